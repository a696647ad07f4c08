"""The GitHub App's own credentials: a JWT for the app, installation tokens (cached)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed

from core.build_settings import GitHubSettings

# A token is used for a clone and a few API calls: renew it well before GitHub's expiry.
_RENEW_BEFORE = timedelta(minutes=5)


class GitHubAppNotConfigured(RuntimeError):
    """CONVEYOR_GITHUB__APP_ID and a private key are needed to talk to GitHub."""


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: datetime


class GitHubApp:
    """Authenticates as the app (RS256 JWT) and as its installations (access tokens)."""

    def __init__(self, settings: GitHubSettings) -> None:
        key = settings.private_key_pem()
        if settings.app_id is None or not key:
            raise GitHubAppNotConfigured("set the GitHub App's id and private key")
        self._settings = settings
        self._app = GitHub(
            AppAuthStrategy(str(settings.app_id), key),
            base_url=settings.api_url,
            http_cache=False,
            auto_retry=False,
            # githubkit's default cache is process-wide: the app's JWT would outlive this object
            # (and a changed key), so each app keeps its own.
            cache_strategy=MemCacheStrategy(),
        )
        self._tokens: dict[int, _Token] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def token_for(self, installation_id: int) -> str:
        async with self._locks.setdefault(installation_id, asyncio.Lock()):
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.expires_at - _RENEW_BEFORE > datetime.now(UTC):
                return cached.value
            response = await self._app.rest.apps.async_create_installation_access_token(
                installation_id
            )
            data = response.parsed_data
            expires = datetime.fromisoformat(data.expires_at).astimezone(UTC)
            token = _Token(data.token, expires)
            self._tokens[installation_id] = token
            return token.value

    async def installation_client(self, installation_id: int) -> GitHub[TokenAuthStrategy]:
        return GitHub(
            TokenAuthStrategy(await self.token_for(installation_id)),
            base_url=self._settings.api_url,
            http_cache=False,
            auto_retry=False,
        )

    async def repository_installation(self, full_name: str) -> int | None:
        """The installation that can read `owner/name` (GitHub's answer), None if none can."""
        owner, _, repo = full_name.partition("/")
        try:
            response = await self._app.rest.apps.async_get_repo_installation(owner, repo)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        return int(response.raw_response.json()["id"])

    async def installation_created_at(self, installation_id: int) -> datetime | None:
        """When the installation was made (GitHub's answer), None if it does not exist."""
        try:
            response = await self._app.rest.apps.async_get_installation(installation_id)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        created = str(response.raw_response.json()["created_at"]).replace("Z", "+00:00")
        return datetime.fromisoformat(created).astimezone(UTC)
