"""imagelog: an audit log for image-generation calls."""
