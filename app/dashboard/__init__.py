"""The web dashboard: server-rendered pages over the engine's RunService, signed-in by API key."""

from app.dashboard.routes import dashboard_routes

__all__ = ["dashboard_routes"]
