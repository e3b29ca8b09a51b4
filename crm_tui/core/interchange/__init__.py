"""Data in and out: vCard and CSV import (with a preview, duplicates found and merged or skipped, bad rows
reported by line), vCard/CSV/iCalendar export. Headless: the CLI and the app call it."""
