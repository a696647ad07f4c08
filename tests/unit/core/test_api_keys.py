"""API keys on a real SQLite database, with a clock the test steps: expiry, revocation, last use."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.auth import ApiKeys, KeyIdentity
from core.db.engine import create_engine, migrate, session_factory
from core.db.models import ApiKey, Workspace
from core.errors import NotFound

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def keys(tmp_path: Path, clock: Clock) -> AsyncIterator[ApiKeys]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    await migrate(engine)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        for workspace in ("wsp-a", "wsp-b"):
            session.add(Workspace(id=workspace, name=workspace, max_concurrency=1, created_at=T0))
    try:
        yield ApiKeys(sessions, clock=clock)
    finally:
        await engine.dispose()


async def stored(keys: ApiKeys, key_id: str) -> ApiKey:
    async with keys._sessions() as session:
        row = await session.get(ApiKey, key_id)
    assert row is not None
    return row


async def test_a_created_key_is_shown_once_and_stored_as_its_hash(keys: ApiKeys) -> None:
    created = await keys.create("wsp-a", "ci")
    assert created.secret.startswith("cvy_")
    assert len(created.secret) == 47  # the prefix and 32 random bytes in URL-safe base64
    row = await stored(keys, created.id)
    assert row.secret_hash == hashlib.sha256(created.secret.encode()).hexdigest()
    assert created.secret not in (row.secret_hash, row.prefix, row.name)
    assert row.prefix == created.secret[:10]
    assert (row.scopes, row.created_at, row.expires_at) == ("", T0, None)
    assert created.info.admin is False
    assert (created.name, created.info.name, created.info.workspace_id) == ("ci", "ci", "wsp-a")
    assert created.id.startswith("key")
    other = await keys.create("wsp-a", "ci")
    assert other.secret != created.secret


async def test_identify_names_the_workspace_and_the_admin_scope(keys: ApiKeys) -> None:
    plain = await keys.create("wsp-a", "plain")
    admin = await keys.create("wsp-b", "root", admin=True)
    assert (await stored(keys, admin.id)).scopes == "admin"
    assert admin.info.admin is True
    assert await keys.identify(plain.secret) == KeyIdentity(
        plain.id, "wsp-a", plain.secret[:10], False
    )
    assert await keys.identify(admin.secret) == KeyIdentity(
        admin.id, "wsp-b", admin.secret[:10], True
    )
    assert await keys.authenticate(admin.secret) == "wsp-b"
    assert await keys.identify("cvy_unknown") is None
    assert await keys.authenticate("cvy_unknown") is None
    assert await keys.identify(plain.secret + "x") is None
    assert await keys.identify(plain.secret[:-1]) is None


async def test_a_key_expires_at_its_expiry(keys: ApiKeys, clock: Clock) -> None:
    created = await keys.create("wsp-a", "short", expires_at=T0 + timedelta(minutes=10))
    clock.now = T0 + timedelta(minutes=10) - timedelta(microseconds=1)
    assert await keys.authenticate(created.secret) == "wsp-a"
    assert await keys.is_usable(created.id) is True
    clock.now = T0 + timedelta(minutes=10)
    assert await keys.authenticate(created.secret) is None
    assert await keys.is_usable(created.id) is False


async def test_a_revoked_key_opens_nothing_from_then_on(keys: ApiKeys, clock: Clock) -> None:
    created = await keys.create("wsp-a", "gone")
    clock.now = T0 + timedelta(hours=1)
    with pytest.raises(NotFound) as caught:
        await keys.revoke("wsp-b", created.id)
    assert str(caught.value) == f"API key {created.id!r} not found"
    assert await keys.is_usable(created.id) is True
    info = await keys.revoke("wsp-a", created.id)
    assert info.revoked_at == T0 + timedelta(hours=1)
    assert await keys.authenticate(created.secret) is None
    assert await keys.is_usable(created.id) is False
    clock.now = T0 + timedelta(hours=2)
    again = await keys.revoke("wsp-a", created.id)
    assert again.revoked_at == T0 + timedelta(hours=1)
    with pytest.raises(NotFound):
        await keys.revoke("wsp-a", "key-missing")
    assert await keys.is_usable("key-missing") is False


async def test_last_use_is_written_at_most_once_a_minute(keys: ApiKeys, clock: Clock) -> None:
    created = await keys.create("wsp-a", "busy")
    assert (await stored(keys, created.id)).last_used_at is None
    clock.now = T0 + timedelta(seconds=5)
    await keys.identify(created.secret)
    assert (await stored(keys, created.id)).last_used_at == T0 + timedelta(seconds=5)
    clock.now = T0 + timedelta(seconds=64, microseconds=999_999)
    await keys.identify(created.secret)
    assert (await stored(keys, created.id)).last_used_at == T0 + timedelta(seconds=5)
    clock.now = T0 + timedelta(seconds=65)
    await keys.identify(created.secret)
    assert (await stored(keys, created.id)).last_used_at == T0 + timedelta(seconds=65)
    expired = await keys.create("wsp-a", "old", expires_at=T0)
    await keys.identify(expired.secret)
    assert (await stored(keys, expired.id)).last_used_at is None


async def test_list_and_workspace_of_key(keys: ApiKeys, clock: Clock) -> None:
    first = await keys.create("wsp-a", "first")
    clock.now = T0 + timedelta(seconds=1)
    second = await keys.create("wsp-a", "second", expires_at=T0 + timedelta(days=1))
    await keys.create("wsp-b", "elsewhere")
    await keys.identify(second.secret)
    listed = await keys.list("wsp-a")
    assert [k.name for k in listed] == ["second", "first"]
    assert (listed[0].id, listed[0].prefix) == (second.id, second.secret[:10])
    assert listed[0].expires_at == T0 + timedelta(days=1)
    assert listed[0].last_used_at == T0 + timedelta(seconds=1)
    assert (listed[1].id, listed[1].created_at, listed[1].last_used_at) == (first.id, T0, None)
    assert await keys.list("wsp-none") == []
    assert await keys.workspace_of_key(first.id) == "wsp-a"
    assert await keys.workspace_of_key("key-missing") is None
    same_time = [await keys.create("wsp-b", f"k{n}") for n in range(3)]
    names = [k.name for k in await keys.list("wsp-b")]
    by_id = sorted(same_time, key=lambda k: k.id, reverse=True)
    assert names[:3] == [k.name for k in by_id]
    assert second.info.last_used_at is None
    assert second.info.id == second.id
    async with keys._sessions() as session:
        assert (await session.scalar(select(ApiKey.name).where(ApiKey.id == second.id))) == "second"


async def test_list_is_newest_first_by_creation_time_not_by_id(keys: ApiKeys, clock: Clock) -> None:
    clock.now = T0 + timedelta(hours=1)
    later = await keys.create("wsp-a", "made second by the clock")  # the smaller id
    clock.now = T0
    earlier = await keys.create("wsp-a", "made first by the clock")
    assert [k.id for k in await keys.list("wsp-a")] == [later.id, earlier.id]


async def test_the_default_clock_is_utc_now(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    await migrate(engine)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        session.add(Workspace(id="wsp-a", name="a", max_concurrency=1, created_at=T0))
    try:
        before = datetime.now(UTC)
        created = await ApiKeys(sessions).create("wsp-a", "now")
        after = datetime.now(UTC)
    finally:
        await engine.dispose()
    assert created.info.created_at.tzinfo is UTC
    assert before <= created.info.created_at <= after
