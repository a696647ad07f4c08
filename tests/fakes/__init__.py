"""Fakes of outside services, speaking their real wire protocols (see each module)."""
