"""The engine's storage handles: the database, blobs and the bus of run changes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.blobs.base import BlobStore
from core.events import EventBus
from core.settings import Settings
from scheduler.payloads import PayloadStore


@dataclass(frozen=True)
class EngineStore:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]  # for what is not on the hot path (ORM)
    blobs: BlobStore
    bus: EventBus
    payloads: PayloadStore
