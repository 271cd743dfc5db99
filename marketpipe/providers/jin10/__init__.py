"""Jin10: everything that knows its wire — Engine.IO/socket.io protocol facts, feed, decoder and simulator."""
