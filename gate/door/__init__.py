"""Door operations: undoing an admission (annul) and confirming passages (docs/design.md §8)."""
