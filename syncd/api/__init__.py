"""Thin HTTP handlers, one module per resource; each registers its operations with ``op``."""
