"""Infoway: everything that knows its wire — protocol facts, feed, decoder and simulator."""
