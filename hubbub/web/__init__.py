"""Files the node serves to browsers (no build step): ``ops/`` is the operator page."""
