"""The CLI's one error type: printed as `error: <cause>`, exit status 1."""

from __future__ import annotations

import click


class CliError(click.ClickException):
    exit_code = 1
