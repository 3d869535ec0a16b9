"""Candidate pools and splits."""
