"""Package data for privacy (the nickname table)."""
