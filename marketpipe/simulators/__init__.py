"""Local servers speaking the jvQuant, Infoway and Jin10 protocols (see ``marketpipe.simulators.runner``)."""
