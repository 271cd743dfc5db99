"""jvQuant: everything that knows its wire — quote protocol, feed, decoder, simulator, trade API client
and the trade API simulator."""
