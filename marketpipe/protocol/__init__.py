"""Protocol facts of each provider, shared by its producer, decoder and simulator (pure, no I/O)."""
