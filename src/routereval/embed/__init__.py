"""Prompt embeddings (being written)."""
