"""The canonical data model and the on-disk corpus store."""
