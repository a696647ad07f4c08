"""The sidecar's relay: answers it passes through, failures it turns into what the SDK retries."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.cli.main import main
from scheduler.relay import Relay, RelayConfig, RelayTimeouts
from scheduler.relay_wire import BadEnvelope, decode_request, encode_request, encode_response
from scheduler.uds_http import Request, Response

pytestmark = pytest.mark.anyio

CALLBACK = Request("POST", "/callback", {}, b'{"complete": {"output": ""}}')


def control_plane(status: int, calls: list[str] | None = None) -> Starlette:
    async def relay(request: HttpRequest) -> JSONResponse:
        if calls is not None:
            calls.append(request.path_params["attempt_id"])
        if request.headers.get("authorization") != "Bearer good":
            return JSONResponse({"message": "bad token", "code": "unauthorized"}, 401)
        if status != 200:
            return JSONResponse({"message": "not yet", "code": "instance_not_attached"}, status)
        relayed = decode_request(await request.json())
        return JSONResponse(encode_response(Response(201, relayed.path.encode())))

    return Starlette(routes=[Route("/internal/v1/instances/{attempt_id}", relay, methods=["POST"])])


async def forward(app: Starlette, token: str, request: Request = CALLBACK) -> Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as client:
        relay = Relay(RelayConfig("att-1", token, "http://cp"), client, RelayTimeouts(2, 2, 0.3))
        return await relay.forward(request)


async def test_the_agents_answer_passes_through() -> None:
    answer = await forward(control_plane(200), "good")
    assert (answer.status, answer.body) == (201, b"/callback")


async def test_a_refused_token_ends_the_worker() -> None:
    answer = await forward(control_plane(200), "bad")
    assert answer.status == 403
    assert b"bad token" in answer.body


class SteppedClock:
    """The relay's clock and sleep: a sleep moves the clock on by exactly what was asked."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("window", "slept"),
    [
        (0.0, []),
        (0.1, [0.1]),
        (0.3, [0.1, 0.2]),
        (1.5, [0.1, 0.2, 0.4, 0.5]),  # the default: doubling from 0.1 s, at most 0.5 s
        (2.2, [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]),
    ],
)
async def test_not_attached_is_retried_within_its_window_then_left_to_the_sdk(
    window: float, slept: list[float]
) -> None:
    calls: list[str] = []
    clock = SteppedClock()
    transport = httpx.ASGITransport(app=control_plane(503, calls))
    async with httpx.AsyncClient(transport=transport) as client:
        config = RelayConfig("att-1", "good", "http://cp")
        relay = Relay(config, client, RelayTimeouts(2, 2, window), sleep=clock.sleep, clock=clock)
        answer = await relay.forward(CALLBACK)
    assert answer.status == 503
    assert clock.slept == pytest.approx(slept)
    assert calls == ["att-1"] * (len(slept) + 1)


def test_the_default_retry_window() -> None:
    assert RelayTimeouts() == RelayTimeouts(connect_s=2.0, read_s=13.0, retry_window_s=1.5)


async def test_an_unreachable_control_plane_is_a_5xx() -> None:
    # bound and never listening, and held for the whole test: connections are refused, and no
    # other process can take the port meanwhile
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        async with httpx.AsyncClient() as client:
            config = RelayConfig("att-1", "good", f"http://127.0.0.1:{bound.getsockname()[1]}")
            answer = await Relay(config, client, RelayTimeouts(1, 1, 0.2)).forward(CALLBACK)
    assert answer.status == 503
    assert b"control plane unreachable" in answer.body


def test_agent_command_needs_the_allocation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOMAD_ALLOC_DIR", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["agent"])
    assert exited.value.code == 1
    assert capsys.readouterr().err.startswith("error: NOMAD_ALLOC_DIR is not set")
    payload = tmp_path / "relay.json"
    payload.write_text('{"attempt_id": 1}')
    with pytest.raises(SystemExit):
        main(["agent", "--socket", str(tmp_path / "s"), "--payload", str(payload)])
    assert "dispatch payload must be an object" in capsys.readouterr().err


def test_the_envelope_carries_the_user_agent_and_older_sidecars_send_none() -> None:
    sent = Request("POST", "/register-tasks", {}, b"{}", user_agent="render-sdk-typescript/1.0.0")
    envelope = encode_request(sent)
    assert envelope["user_agent"] == "render-sdk-typescript/1.0.0"
    assert decode_request(envelope) == sent
    del envelope["user_agent"]
    assert decode_request(envelope).user_agent == ""
    with pytest.raises(BadEnvelope, match="user_agent must be a string"):
        decode_request({**envelope, "user_agent": 3})
    with pytest.raises(BadEnvelope, match="optionally"):
        decode_request({**envelope, "extra": 1})
