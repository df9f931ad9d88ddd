"""Quarterly provider returns: what services report they actually did (counts only)."""
