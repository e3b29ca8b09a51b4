"""The headless core: models, database, services. No UI, no network transport."""
