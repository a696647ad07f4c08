"""Clients that drive one system each, run in that system's own interpreter (stdlib + its SDK)."""
