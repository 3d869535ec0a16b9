"""Adapters that bring performance records into the canonical data model."""
