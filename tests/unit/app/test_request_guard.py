"""The request guard: Host (DNS rebinding), Origin, Sec-Fetch-Site and Content-Type rules."""

from __future__ import annotations

import httpx
import pytest

from app.api.request_guard import split_host
from core.security_settings import SecuritySettings
from core.settings import Settings
from tests.unit.app.app_fakes import WS, FakeRuntime, fake_app, make_run

pytestmark = pytest.mark.anyio

SERVED = "http://127.0.0.1:8120"
RUN = {"task": "hello/square", "input": [3]}


def make_runtime(**security: tuple[str, ...]) -> FakeRuntime:
    fake = FakeRuntime(settings=Settings(security=SecuritySettings(**security)))
    fake.service.runs["trn-1"] = make_run()
    return fake


def client(runtime: FakeRuntime, anonymous: str | None = WS) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=fake_app(runtime, anonymous), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=SERVED)


def created(runtime: FakeRuntime) -> int:
    return sum(1 for call in runtime.service.calls if call[0] == "create")


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:8120", ("127.0.0.1", 8120)),
        ("LocalHost", ("localhost", None)),
        ("[::1]:8120", ("[::1]", 8120)),
        ("[::1]", ("[::1]", None)),
        ("evil.example:8120", ("evil.example", 8120)),
        ("", None),
        ("a:b", None),
        ("[::1", None),
        ("[::1]x", None),
        ("a:1:2", None),
    ],
)
def test_split_host(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert split_host(value) == parsed


@pytest.mark.parametrize("host", ["127.0.0.1:8120", "localhost:8120", "[::1]:8120"])
async def test_dev_accepts_its_own_names(host: str) -> None:
    runtime = make_runtime()
    async with client(runtime) as http:
        assert (await http.get("/healthz", headers={"host": host})).status_code == 200
        response = await http.post("/v1/task-runs", json=RUN, headers={"host": host})
        assert response.status_code == 202
    assert created(runtime) == 1


@pytest.mark.parametrize(
    "host", ["evil.example:8120", "evil.example", "127.0.0.1:9999", "localhost", "a:b"]
)
async def test_dev_refuses_foreign_hosts_on_every_route(host: str) -> None:
    runtime = make_runtime()
    async with client(runtime) as http:
        for method, path in [("GET", "/healthz"), ("GET", "/v1/task-runs/trn-1"), ("GET", "/")]:
            response = await http.request(method, path, headers={"host": host})
            assert response.status_code == 400, (method, path)
            assert response.json()["code"] == "untrusted_host"
            assert "DNS rebinding" in response.json()["message"]
        response = await http.post("/v1/task-runs", json=RUN, headers={"host": host})
        assert response.status_code == 400
    assert created(runtime) == 0


async def test_allowed_hosts_setting() -> None:
    runtime = make_runtime(allowed_hosts=("conveyor.internal", "box.lan:9000"))
    async with client(runtime) as http:
        for host, status in [
            ("conveyor.internal", 200),
            ("conveyor.internal:1234", 200),
            ("box.lan:9000", 200),
            ("box.lan:9001", 400),
            ("box.lan", 400),
            ("other.lan:8120", 400),
        ]:
            response = await http.get("/healthz", headers={"host": host})
            assert response.status_code == status, host


async def test_production_checks_host_only_when_configured() -> None:
    async with client(make_runtime(), anonymous=None) as http:
        response = await http.get("/healthz", headers={"host": "conveyor.example.com"})
        assert response.status_code == 200
    async with client(make_runtime(allowed_hosts=("api.example.com",)), anonymous=None) as http:
        response = await http.get("/healthz", headers={"host": "conveyor.example.com"})
        assert response.status_code == 400
        assert (await http.get("/healthz", headers={"host": "api.example.com"})).status_code == 200


@pytest.mark.parametrize("anonymous", [WS, None])
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "text/json"]
)
async def test_writes_need_json(anonymous: str | None, content_type: str | None) -> None:
    runtime = make_runtime()
    headers = {"authorization": "Bearer cvy_good"} if anonymous is None else {}
    if content_type is not None:
        headers["content-type"] = content_type
    async with client(runtime, anonymous) as http:
        body = b'{"task": "hello/square", "input": [3]}'
        response = await http.post("/v1/task-runs", content=body, headers=headers)
        assert response.status_code == 415
        assert response.json()["code"] == "unsupported_media_type"
        assert "application/json" in response.json()["message"]
        patch = await http.patch("/v1/workflows/wf-1", content=b"{}", headers=headers)
        assert patch.status_code == 415
    assert created(runtime) == 0


async def test_json_with_parameters_is_json() -> None:
    runtime = make_runtime()
    headers = {"content-type": "Application/JSON; charset=utf-8"}
    async with client(runtime) as http:
        body = b'{"task": "hello/square", "input": [3]}'
        assert (await http.post("/v1/task-runs", content=body, headers=headers)).status_code == 202


async def test_unknown_routes_keep_404_and_405() -> None:
    async with client(make_runtime()) as http:
        assert (await http.put("/v1/task-runs/trn-1", content=b"x")).status_code == 405
        assert (await http.post("/v1/nothing", content=b"x")).status_code == 404


@pytest.mark.parametrize("anonymous", [WS, None])
@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",
        "http://evil.example",
        "http://evil.example:8120",
        "http://localhost:8120",
        "null",
        "http://127.0.0.1",
    ],
)
async def test_foreign_origins_cannot_write(anonymous: str | None, origin: str) -> None:
    runtime = make_runtime()
    headers = {"origin": origin}
    if anonymous is None:
        headers["authorization"] = "Bearer cvy_good"
    async with client(runtime, anonymous) as http:
        response = await http.post("/v1/task-runs", json=RUN, headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "cross_origin_request"
        assert origin in response.json()["message"]
        assert (await http.delete("/v1/task-runs/trn-1", headers=headers)).status_code == 403
        form = {"csrf_token": "x", "api_key": "cvy_good"}
        assert (await http.post("/sign-in", data=form, headers=headers)).status_code == 403
        # reads stay open to other origins (CORS keeps their answers from the page)
        assert (await http.get("/v1/task-runs/trn-1", headers=headers)).status_code == 200
    assert created(runtime) == 0
    assert ("cancel", "trn-1") not in runtime.service.calls


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8120", "HTTP://LOCALHOST:8120"])
async def test_own_origin_can_write(origin: str) -> None:
    runtime = make_runtime()
    host = origin.lower().removeprefix("http://")
    async with client(runtime) as http:
        headers = {"origin": origin, "host": host, "sec-fetch-site": "same-origin"}
        assert (await http.post("/v1/task-runs", json=RUN, headers=headers)).status_code == 202


async def test_default_ports_match_a_host_without_one() -> None:
    runtime = make_runtime()
    async with client(runtime, anonymous=None) as http:
        headers = {
            "origin": "https://conveyor.example.com",
            "host": "conveyor.example.com",
            "authorization": "Bearer cvy_good",
        }
        assert (await http.post("/v1/task-runs", json=RUN, headers=headers)).status_code == 202
        headers["origin"] = "https://conveyor.example.com:8443"
        assert (await http.post("/v1/task-runs", json=RUN, headers=headers)).status_code == 403


async def test_allowed_origins_setting() -> None:
    runtime = make_runtime(allowed_origins=("https://ops.example.com/",))
    async with client(runtime) as http:
        headers = {"origin": "https://ops.example.com", "sec-fetch-site": "cross-site"}
        assert (await http.post("/v1/task-runs", json=RUN, headers=headers)).status_code == 202
        headers["origin"] = "https://ops.example.com:444"
        assert (await http.post("/v1/task-runs", json=RUN, headers=headers)).status_code == 403


async def test_cross_site_fetch_metadata_is_refused() -> None:
    runtime = make_runtime()
    async with client(runtime) as http:
        headers = {"sec-fetch-site": "cross-site"}
        response = await http.post("/v1/task-runs", json=RUN, headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "cross_site_request"
        assert (await http.get("/v1/task-runs/trn-1", headers=headers)).status_code == 200
    assert created(runtime) == 0
