"""Router module (being written)."""
