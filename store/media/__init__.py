"""Images: fetching them from their hosts, reading a host's answer, thumbnails and the
background worker that makes them while a URL still lives."""
