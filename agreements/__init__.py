"""agreements package."""
