"""What the top-level options give every subcommand."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from app.cli.api_client import ApiClient


@dataclass
class CliContext:
    url: str
    api_key: str | None
    _client: ApiClient | None = field(default=None, repr=False)

    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.url, self.api_key)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def client_of(ctx: click.Context) -> ApiClient:
    state = ctx.find_object(CliContext)
    if state is None:
        raise click.UsageError("the conveyor command group was not set up")
    return state.client()
