"""Settings for commands that open the engine themselves: CONVEYOR_* applies, flags win."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.settings import Settings


def build_settings(
    *,
    data_dir: Path | None = None,
    default_data_dir: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    max_concurrency: int | None = None,
) -> Settings:
    """`default_data_dir` is used only when neither the flag nor CONVEYOR_DATA_DIR is given."""
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    elif default_data_dir is not None and "CONVEYOR_DATA_DIR" not in os.environ:
        overrides["data_dir"] = default_data_dir
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if max_concurrency is not None:
        # pydantic-settings merges nested groups, so other CONVEYOR_LIMITS__* still apply.
        overrides["limits"] = {"max_concurrency": max_concurrency}
    return Settings(**overrides)
