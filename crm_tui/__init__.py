"""crm-tui: a keyboard-driven terminal CRM for salespeople."""

__version__ = "0.1.0"
