"""Process plumbing every command shares: logging, the metrics endpoint, child-process
supervision, local ports and Docker, and the files the package ships."""
