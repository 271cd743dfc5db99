"""The ``marketpipe`` command: :mod:`marketpipe.cli.main` parses the command line and dispatches
to one module per sub-command, named as the user types it (``cli/kafka.py`` is ``marketpipe
kafka``). A command module only parses its arguments and calls the library code that does the
work, so nothing else imports it."""
