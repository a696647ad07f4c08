"""docs/github-app.md asks GitHub for what the code uses: its route, its events, its API calls."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app.github.webhook import routes

REPO = Path(__file__).resolve().parents[3]
GUIDE = REPO / "docs" / "github-app.md"
# The App's REST namespaces the code calls -> the repository permission each needs (GitHub:
# "Permissions required for GitHub Apps"); `apps` is the App's own JWT, no permission.
PERMISSIONS = {"checks": ("Checks", "Read and write"), "apps": None}
# The installation token fetches commits over git (builder/source.py): contents, read-only.
GIT_FETCH = ("Contents", "Read-only")
ALWAYS = ("Metadata", "Read-only")


def guide() -> str:
    return GUIDE.read_text()


def events_handled() -> set[str]:
    """The event names the webhook's dispatcher compares `event` with."""
    tree = ast.parse((REPO / "app" / "github" / "webhook.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and getattr(node.left, "id", None) == "event":
            for right in node.comparators:
                for constant in ast.walk(right):
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                        names.add(constant.value)
    return names


def rest_namespaces() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "app" / "github").glob("*.py"):
        found |= set(re.findall(r"\.rest\.(\w+)\.", path.read_text()))
    return found


def permission_rows() -> set[tuple[str, str]]:
    section = guide().split("**Repository permissions**", 1)[1].split("**Subscribe", 1)[0]
    rows = re.findall(r"^\| (\w+) \| ([\w -]+?) \|", section, flags=re.M)
    return {(name, access) for name, access in rows if name != "permission"}


def test_the_webhook_url_is_the_served_route_over_https() -> None:
    (route,) = routes
    assert f"| Webhook URL | `https://conveyor.example.com{route.path}` |" in guide()
    assert not re.search(r"http://\w", guide()), "an example with plain HTTP"


def test_every_event_the_webhook_handles_is_named() -> None:
    handled = events_handled()
    assert handled == {"ping", "push", "installation", "installation_repositories"}
    for event in handled:
        assert f"`{event}`" in guide(), event


def test_the_permissions_are_exactly_what_the_code_uses() -> None:
    namespaces = rest_namespaces()
    assert namespaces <= PERMISSIONS.keys(), f"map {namespaces - PERMISSIONS.keys()}"
    needed = {PERMISSIONS[n] for n in namespaces} - {None} | {GIT_FETCH, ALWAYS}
    assert permission_rows() == needed


def test_callback_setup_and_installation_are_covered() -> None:
    text = guide()
    for step in ("| Callback URL |", "| Setup URL |", "## 3. Install it", "Private keys"):
        assert step in text, step
