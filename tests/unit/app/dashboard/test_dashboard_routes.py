"""The dashboard's HTTP behaviour over an in-memory engine: sign-in, sessions, CSRF, forms."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from core.settings import DashboardSettings, Settings
from tests.unit.app.app_fakes import FakeRuntime, fake_app, make_run

pytestmark = pytest.mark.anyio

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def runtime() -> FakeRuntime:
    settings = Settings(dashboard=DashboardSettings(session_secret="k" * 48))
    fake = FakeRuntime(settings=settings)
    fake.service.runs["trn-1"] = make_run()
    return fake


def client(runtime: FakeRuntime, anonymous: str | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=fake_app(runtime, anonymous), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8120")


@pytest.fixture
async def guarded(runtime: FakeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime, None) as http:
        yield http


@pytest.fixture
async def local(runtime: FakeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime, "wsp-default") as http:
        yield http


async def csrf_of(http: httpx.AsyncClient, path: str) -> str:
    found = CSRF.search((await http.get(path)).text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, key: str = "cvy_good", **extra: str) -> httpx.Response:
    token = await csrf_of(http, "/sign-in")
    return await http.post("/sign-in", data={"csrf_token": token, "api_key": key, **extra})


@pytest.mark.parametrize(
    "path",
    [
        "/runs",
        "/runs/trn-1",
        "/tasks",
        "/tasks/hello/square",
        "/workflows",
        "/usage",
        "/runs/trn-1/output.json",
    ],
)
async def test_pages_redirect_to_sign_in(guarded: httpx.AsyncClient, path: str) -> None:
    response = await guarded.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in?next=")


@pytest.mark.parametrize("path", ["/dashboard/events", "/dashboard/runs/trn-1/log"])
async def test_data_needs_a_session(guarded: httpx.AsyncClient, path: str) -> None:
    response = await guarded.get(path)
    assert response.status_code == 401
    assert response.json() == {"message": "sign in to the dashboard first", "code": "unauthorized"}


async def test_sign_in_sets_a_strict_cookie_and_lands_on_next(guarded: httpx.AsyncClient) -> None:
    response = await sign_in(guarded, next="/tasks")
    assert response.status_code == 303
    assert response.headers["location"] == "/tasks"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    page = await guarded.get("/runs")
    assert page.status_code == 200
    assert "wsp-key" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_sign_in_rotates_the_csrf_token(guarded: httpx.AsyncClient) -> None:
    before = await csrf_of(guarded, "/sign-in")
    await guarded.post("/sign-in", data={"csrf_token": before, "api_key": "cvy_good"})
    assert await csrf_of(guarded, "/runs") != before


@pytest.mark.parametrize("key", ["", "cvy_wrong"])
async def test_bad_keys_are_refused_visibly(guarded: httpx.AsyncClient, key: str) -> None:
    response = await sign_in(guarded, key)
    assert response.status_code == 401
    assert 'role="alert"' in response.text
    assert (await guarded.get("/runs")).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil"])
async def test_next_never_leaves_the_site(guarded: httpx.AsyncClient, target: str) -> None:
    response = await sign_in(guarded, next=target)
    assert response.headers["location"] == "/runs"


async def test_sign_in_without_csrf_is_refused(guarded: httpx.AsyncClient) -> None:
    await guarded.get("/sign-in")
    response = await guarded.post("/sign-in", data={"api_key": "cvy_good"})
    assert response.status_code == 403
    assert (await guarded.get("/runs")).status_code == 303


async def test_sign_out(guarded: httpx.AsyncClient) -> None:
    await sign_in(guarded)
    token = await csrf_of(guarded, "/runs")
    response = await guarded.post("/sign-out", data={"csrf_token": token})
    assert response.status_code == 303
    assert (await guarded.get("/runs")).status_code == 303


async def test_anonymous_app_skips_sign_in(local: httpx.AsyncClient) -> None:
    assert (await local.get("/sign-in")).status_code == 303
    page = await local.get("/runs")
    assert page.status_code == 200
    assert "local dev" in page.text and "Sign out" not in page.text


async def test_start_run_from_fields(local: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    token = await csrf_of(local, "/tasks/hello/square")
    response = await local.post(
        "/tasks/hello/square",
        data={
            "csrf_token": token,
            "mode": "fields",
            "param.a": "7",
            "param.b": "",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/runs/trn-")
    assert runtime.service.calls[-1] == ("create", ("wsp-default", "hello/square", {"a": 7}, None))


async def test_start_run_from_raw_json(local: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    token = await csrf_of(local, "/tasks/hello/square")
    response = await local.post(
        "/tasks/hello/square",
        data={
            "csrf_token": token,
            "mode": "raw",
            "raw_input": "[3, 4]",
        },
    )
    assert response.status_code == 303
    assert runtime.service.calls[-1][1][2] == [3, 4]


def creates(runtime: FakeRuntime) -> list[Any]:
    return [call for call in runtime.service.calls if call[0] == "create"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "fields", "param.a": "[1,"}, "a: not valid JSON"),
        ({"mode": "fields", "param.a": ""}, "a is required"),
        ({"mode": "raw", "raw_input": "42"}, "must be a JSON array or object"),
        ({"mode": "raw", "raw_input": "{oops"}, "not valid JSON"),
    ],
)
async def test_bad_input_starts_nothing(
    local: httpx.AsyncClient, runtime: FakeRuntime, fields: dict[str, str], message: str
) -> None:
    token = await csrf_of(local, "/tasks/hello/square")
    response = await local.post("/tasks/hello/square", data={"csrf_token": token, **fields})
    assert response.status_code == 400
    assert 'role="alert"' in response.text and message in response.text
    assert creates(runtime) == []


class FormControls(HTMLParser):
    """Every input, select, textarea and option of a page, as (tag, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("input", "select", "textarea", "option"):
            self.controls.append((tag, dict(attrs)))


def controls_of(page: str, name: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = FormControls()
    parser.feed(page)
    return [(tag, attrs) for tag, attrs in parser.controls if attrs.get("name") == name]


async def test_typed_parameters_get_fitting_fields(local: httpx.AsyncClient) -> None:
    page = (await local.get("/tasks/hello/typed")).text
    assert 'id="task-doc">Counts things.\n\nThe second paragraph.</div>' in page
    [(_, count)] = controls_of(page, "param.count")
    assert (count["type"], count["step"]) == ("number", "1")
    [(_, ratio)] = controls_of(page, "param.ratio")
    assert (ratio["type"], ratio["step"], ratio["placeholder"]) == ("number", "any", "1.5")
    [(_, name)] = controls_of(page, "param.name")
    assert name["type"] == "text"
    # unticked boxes send nothing: a hidden "false" first, the box's "true" wins when ticked
    hidden, box = controls_of(page, "param.loud")
    assert (hidden[1]["type"], hidden[1]["value"]) == ("hidden", "false")
    assert (box[1]["type"], box[1]["value"], "checked" in box[1]) == ("checkbox", "true", False)
    [(tag, _)] = controls_of(page, "param.color")
    assert tag == "select"
    parser = FormControls()
    parser.feed(page)
    options = [a.get("value") for t, a in parser.controls if t == "option"]
    assert options == ["", '"red"', '"green"']
    [(tag, _)] = controls_of(page, "param.items")
    assert tag == "textarea"
    assert "(list[int])" in page and "(Color)" in page


async def test_typed_fields_become_typed_input(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    token = await csrf_of(local, "/tasks/hello/typed")
    fields = {
        "param.count": "3",
        "param.ratio": "",
        "param.name": "42",
        "param.loud": "true",
        "param.color": '"green"',
        "param.items": "[1, 2]",
    }
    data = {"csrf_token": token, "mode": "fields", **fields}
    response = await local.post("/tasks/hello/typed", data=data)
    assert response.status_code == 303
    assert creates(runtime)[-1][1][2] == {
        "count": 3,
        "name": "42",
        "loud": True,
        "color": "green",
        "items": [1, 2],
    }


async def test_typed_fields_refuse_what_the_task_would(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    token = await csrf_of(local, "/tasks/hello/typed")
    fields = {"param.count": "abc", "param.name": "n", "param.items": '[1, "x"]'}
    data = {"csrf_token": token, "mode": "fields", **fields}
    response = await local.post("/tasks/hello/typed", data=data)
    assert response.status_code == 400
    assert "count: expected int, got &#39;abc&#39;" in response.text
    assert "items[1]: expected int, got &#39;x&#39;" in response.text
    assert 'id="param.count" name="param.count" value="abc"' in response.text
    assert creates(runtime) == []


@pytest.mark.parametrize("token", [None, "forged"])
async def test_posts_without_the_session_token_change_nothing(
    local: httpx.AsyncClient, runtime: FakeRuntime, token: str | None
) -> None:
    await local.get("/runs")
    data = {"mode": "raw", "raw_input": "[1]"} | ({"csrf_token": token} if token else {})
    assert (await local.post("/tasks/hello/square", data=data)).status_code == 403
    cancel = {"csrf_token": token} if token else {"reason": "none"}
    assert (await local.post("/runs/trn-1/cancel", data=cancel)).status_code == 403
    assert creates(runtime) == []
    assert not [c for c in runtime.service.calls if c[0] == "cancel"]


async def test_forms_must_be_url_encoded(local: httpx.AsyncClient) -> None:
    response = await local.post("/runs/trn-1/cancel", json={"csrf_token": "x"})
    assert response.status_code == 400
    assert "expected a form" in response.text


async def test_cancel(local: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    token = await csrf_of(local, "/tasks/hello/square")
    response = await local.post("/runs/trn-1/cancel", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/runs/trn-1"
    assert ("cancel", "trn-1") in runtime.service.calls


async def test_unknown_things_are_html_404s(local: httpx.AsyncClient) -> None:
    for path in ("/runs/trn-missing", "/tasks/hello/missing"):
        response = await local.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "not found" in response.text


async def test_output_download(local: httpx.AsyncClient) -> None:
    response = await local.get("/runs/trn-1/output.json")
    assert response.json() == [49]
    assert "attachment" in response.headers["content-disposition"]


async def test_runs_filter_problems_are_shown(local: httpx.AsyncClient) -> None:
    response = await local.get("/runs?status=bogus")
    assert response.status_code == 400
    assert "unknown status" in response.text
