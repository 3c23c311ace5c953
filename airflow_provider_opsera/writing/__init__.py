"""Writing records to Opsera safely: checks before sending, diffs, and list syncs."""
