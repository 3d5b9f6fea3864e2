"""Migration scripts, applied in revision order (file names are numbered for readers)."""
