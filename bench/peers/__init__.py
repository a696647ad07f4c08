"""The peers' task code, imported by their workers from their own virtualenvs."""
