"""A source folder's dependency files: what they are, their hash, and how to install them."""

from __future__ import annotations

import hashlib
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from builder.base import BuildFailed

LOCK_FILES = ("poetry.lock", "uv.lock")


@dataclass(frozen=True)
class Dependencies:
    files: tuple[Path, ...]  # every file whose content decides the environment
    requirements: tuple[str, ...]  # pip arguments that install them ("-r x.txt" or specifiers)

    @property
    def empty(self) -> bool:
        return not self.files


def find_dependencies(source: Path) -> Dependencies:
    files = sorted(source.glob("requirements*.txt"))
    pyproject = source / "pyproject.toml"
    files += [p for p in (pyproject, *(source / name for name in LOCK_FILES)) if p.is_file()]
    main = source / "requirements.txt"
    if main.is_file():
        return Dependencies(tuple(files), ("-r", str(main)))
    if pyproject.is_file():
        return Dependencies(tuple(files), _project_dependencies(pyproject))
    return Dependencies(tuple(files), ())


def _project_dependencies(pyproject: Path) -> tuple[str, ...]:
    # Only the declared dependencies: the project's own code is run from the checkout, so an
    # environment keyed by these files stays right for every commit that keeps them.
    try:
        data = tomllib.loads(pyproject.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BuildFailed(f"pyproject.toml is not valid TOML: {exc}") from None
    raw = data.get("project", {}).get("dependencies", [])
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise BuildFailed("pyproject.toml: [project].dependencies must be a list of strings")
    return tuple(raw)


def environment_key(deps: Dependencies, source: Path, *extra: str) -> str:
    """Same files (by name and content), same interpreter and SDK ⇒ same key."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version_info[:3]}".encode())
    for part in extra:
        digest.update(part.encode() + b"\0")
    for path in deps.files:
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]
