"""A fake of GitHub's documented REST API, just the calls a GitHub App's build reporter makes.

GitHub cannot be reached from the test machines, so this small Starlette app on loopback stands
in for `https://api.github.com`, and githubkit talks to it through its `base_url`. It is strict
where GitHub is (docs.github.com/rest/apps/apps, /rest/checks/runs):

- `POST /app/installations/{id}/access_tokens` needs `Authorization: Bearer <JWT>`: an RS256 JWT
  whose signature verifies against the app's public key, `iss` = the app id, `iat` in the past,
  `exp` in the future and at most 10 minutes after `iat`. It answers 201 with a fresh `ghs_…`
  token and its `expires_at` (one hour).
- `POST /repos/{owner}/{repo}/check-runs` (which tests can make hang: `stall_check_runs`) and
  `PATCH …/check-runs/{id}` need an installation token (`Authorization: token …` or
  `Bearer …`) issued here and not expired, for an installation that can see the repository;
  bodies must carry `name` and a 40-hex `head_sha` (create), a
  known `status`, a `conclusion` when (and only when) completed, `output.title` and
  `output.summary` when an output is sent. Answers are full CheckRun objects.
- A body that is not JSON is answered 400 "Problems parsing JSON", as GitHub does.

- `GET /app/installations/{id}` and `GET /repos/{owner}/{repo}/installation` need the app's JWT
  and answer the Installation object (docs.github.com/rest/apps/apps#get-an-installation-for-the-
  authenticated-app), or 404.
- Git over smart HTTP on the same host, as github.com serves it (`/{owner}/{repo}.git/info/refs`,
  `…/git-upload-pack`, answered by real `git http-backend`) for the repositories in `repos`:
  private, so a request needs `Authorization: Basic x-access-token:<installation token>` (401
  with `WWW-Authenticate: Basic` without one, or with a token not issued here or expired; 404
  "Repository not found." when the token's installation cannot see the repository). A repository
  in `redirects` answers 301 to its new URL once authenticated, as GitHub does for a renamed one.

Every accepted call is recorded, so tests assert on what GitHub would have seen; every token a
git request carried is written in `ledger` with the host it was sent to.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.git_http import TokenLedger, http_backend

_SHA = re.compile(r"^[0-9a-f]{40}$")
_STATUSES = frozenset({"queued", "in_progress", "completed", "waiting", "requested", "pending"})
_CONCLUSIONS = frozenset(
    {"success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required"}
)


def new_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"message": message, "documentation_url": "https://docs.github.com/rest"}, status
    )


async def _json_body(request: Request) -> Any:
    """The parsed body, or GitHub's 400 for one that is not JSON."""
    try:
        return json.loads(await request.body())
    except ValueError:
        return _error(400, "Problems parsing JSON")


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclass
class CheckRun:
    id: int
    owner: str
    repo: str
    name: str
    head_sha: str
    external_id: str | None
    status: str
    conclusion: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    completed_at: str | None = None
    history: list[str] = field(default_factory=list)  # every status it was given, in order


class FakeGitHub:
    def __init__(self, app_id: int, private_key_pem: str) -> None:
        self.app_id = app_id
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        self._public_key = key.public_key()
        self.installations: dict[int, set[str]] = {}  # id → "owner/repo" it can see
        self.tokens: dict[str, tuple[int, datetime]] = {}
        self.token_requests = 0
        self.check_runs: dict[int, CheckRun] = {}
        self._ids = itertools.count(4_000_000_001)  # beyond 32 bits, as GitHub's ids are
        self.url = ""
        # when each installation was made (GitHub's `created_at`); unset: a day ago
        self.installation_created: dict[int, datetime] = {}
        self.repos: dict[str, Path] = {}  # "owner/repo" → its bare repository, served over git
        self.redirects: dict[str, str] = {}  # "owner/repo" → the URL it moved to
        self.redirected: list[str] = []  # the Location of every 301 answered
        self.ledger = TokenLedger()
        # while set, a request to create a check run hangs (then answers 503, creating nothing):
        # a caller stuck there can be killed mid-request
        self.stall_check_runs = threading.Event()
        self.stalled = 0  # requests that hung there

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/app/installations/{installation_id:int}/access_tokens",
                    self._access_token,
                    methods=["POST"],
                ),
                Route(
                    "/app/installations/{installation_id:int}",
                    self._get_installation,
                    methods=["GET"],
                ),
                Route(
                    "/repos/{owner}/{repo}/installation",
                    self._repository_installation,
                    methods=["GET"],
                ),
                Route("/{owner}/{repo}/info/refs", self._git, methods=["GET"]),
                Route("/{owner}/{repo}/git-upload-pack", self._git, methods=["POST"]),
                Route("/repos/{owner}/{repo}/check-runs", self._create_check, methods=["POST"]),
                Route(
                    "/repos/{owner}/{repo}/check-runs/{check_id:int}",
                    self._update_check,
                    methods=["PATCH"],
                ),
            ]
        )

    # -- auth -----------------------------------------------------------------------------------

    def _verify_jwt(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "A JSON web token could not be decoded"
        try:
            claims = jwt.decode(
                token,
                self._public_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
                leeway=0,
            )
        except jwt.PyJWTError as exc:
            return f"A JSON web token could not be decoded: {exc}"
        if str(claims["iss"]) != str(self.app_id):
            return "Integration not found"
        now = datetime.now(UTC).timestamp()
        # GitHub: at most 10 minutes of life, and an `exp` at most 10 minutes from now
        if claims["exp"] - claims["iat"] > 600 or claims["exp"] > now + 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        if claims["iat"] > now:
            return "'Issued at' claim ('iat') must be a time in the past"
        return None

    def _installation_of(self, request: Request) -> int | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        issued = self.tokens.get(token)
        if issued is None or issued[1] <= datetime.now(UTC):
            return None
        return issued[0]

    async def _access_token(self, request: Request) -> Response:
        problem = self._verify_jwt(request)
        if problem is not None:
            return _error(401, problem)
        installation_id = request.path_params["installation_id"]
        if installation_id not in self.installations:
            return _error(404, "Not Found")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        self.tokens[token] = (installation_id, expires)
        self.token_requests += 1
        return JSONResponse(
            {
                "token": token,
                "expires_at": _time(expires),
                "permissions": {"checks": "write", "contents": "read"},
                "repository_selection": "selected",
            },
            201,
        )

    # -- installations --------------------------------------------------------------------------

    def _installation_json(self, installation_id: int) -> dict[str, Any]:
        created = self.installation_created.get(
            installation_id, datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        )
        api = f"{self.url}/app/installations/{installation_id}"
        return {
            "id": installation_id,
            "account": None,
            "repository_selection": "selected",
            "access_tokens_url": f"{api}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": f"https://github.com/settings/installations/{installation_id}",
            "app_id": self.app_id,
            "target_id": 583231,
            "target_type": "Organization",
            "permissions": {"checks": "write", "contents": "read"},
            "events": ["push"],
            "created_at": _time(created),
            "updated_at": _time(created),
            "single_file_name": None,
            "app_slug": "conveyor-test",
            "suspended_by": None,
            "suspended_at": None,
        }

    async def _get_installation(self, request: Request) -> Response:
        problem = self._verify_jwt(request)
        if problem is not None:
            return _error(401, problem)
        installation_id = request.path_params["installation_id"]
        if installation_id not in self.installations:
            return _error(404, "Not Found")
        return JSONResponse(self._installation_json(installation_id))

    async def _repository_installation(self, request: Request) -> Response:
        problem = self._verify_jwt(request)
        if problem is not None:
            return _error(401, problem)
        full_name = f"{request.path_params['owner']}/{request.path_params['repo']}".lower()
        for installation_id, names in sorted(self.installations.items()):
            if full_name in names:
                return JSONResponse(self._installation_json(installation_id))
        return _error(404, "Not Found")

    # -- git over smart HTTP --------------------------------------------------------------------

    async def _git(self, request: Request) -> Response:
        owner, repo = request.path_params["owner"], request.path_params["repo"]
        full_name = f"{owner}/{repo.removesuffix('.git')}".lower()
        token = self.ledger.record(request)
        service = request.url.path.split("/", 3)[3]  # "info/refs" or "git-upload-pack"
        challenge = {"WWW-Authenticate": 'Basic realm="GitHub"'}
        issued = self.tokens.get(token or "")
        if issued is None or issued[1] <= datetime.now(UTC):
            return Response(b"Invalid username or token.\n", 401, challenge)
        if full_name not in self.installations.get(issued[0], set()):
            return Response(b"Repository not found.\n", 404)
        if full_name in self.redirects:  # only to whoever may see it: it is private
            query = f"?{request.url.query}" if request.url.query else ""
            moved = f"{self.redirects[full_name].rstrip('/')}/{service}{query}"
            self.redirected.append(moved)
            return Response(status_code=301, headers={"Location": moved})
        bare = self.repos.get(full_name)
        if bare is None:
            return Response(b"Repository not found.\n", 404)
        return await http_backend(bare.parent, f"/{bare.name}/{service}", request)

    # -- check runs -----------------------------------------------------------------------------

    def _authorised(self, request: Request) -> Response | None:
        installation_id = self._installation_of(request)
        if installation_id is None:
            return _error(401, "Bad credentials")
        full_name = f"{request.path_params['owner']}/{request.path_params['repo']}".lower()
        if full_name not in self.installations.get(installation_id, set()):
            return _error(404, "Not Found")
        return None

    @staticmethod
    def _check_body(body: Any, creating: bool) -> str | None:
        if not isinstance(body, dict):
            return "Invalid request: body must be an object"
        if creating and not isinstance(body.get("name"), str):
            return 'Invalid request: "name" wasn\'t supplied'
        if creating and not _SHA.match(str(body.get("head_sha", ""))):
            return 'Invalid request: "head_sha" must be a 40-character sha'
        status = body.get("status")
        if status is not None and status not in _STATUSES:
            return f"Invalid request: unknown status {status!r}"
        conclusion = body.get("conclusion")
        if status == "completed" and conclusion not in _CONCLUSIONS:
            return 'Invalid request: "conclusion" is required when status is completed'
        if conclusion is not None and status is not None and status != "completed":
            return f'Invalid request: "conclusion" cannot be sent with status {status!r}'
        if conclusion is not None and conclusion not in _CONCLUSIONS:
            return f"Invalid request: unknown conclusion {conclusion!r}"
        output = body.get("output")
        if output is not None and not (
            isinstance(output, dict)
            and isinstance(output.get("title"), str)
            and isinstance(output.get("summary"), str)
        ):
            return 'Invalid request: output needs "title" and "summary"'
        return None

    async def _create_check(self, request: Request) -> Response:
        if self.stall_check_runs.is_set():
            self.stalled += 1
            while self.stall_check_runs.is_set():
                await asyncio.sleep(0.05)
            return _error(503, "Service unavailable")
        refused = self._authorised(request)
        if refused is not None:
            return refused
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        problem = self._check_body(body, creating=True)
        if problem is not None:
            return _error(422, problem)
        run = CheckRun(
            id=next(self._ids),
            owner=request.path_params["owner"],
            repo=request.path_params["repo"],
            name=body["name"],
            head_sha=body["head_sha"],
            external_id=body.get("external_id"),
            status=body.get("status", "queued"),
        )
        self._apply(run, body)
        self.check_runs[run.id] = run
        return JSONResponse(self._render(run), 201)

    async def _update_check(self, request: Request) -> Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        run = self.check_runs.get(request.path_params["check_id"])
        if run is None:
            return _error(404, "Not Found")
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        problem = self._check_body(body, creating=False)
        if problem is not None:
            return _error(422, problem)
        self._apply(run, body)
        return JSONResponse(self._render(run), 200)

    @staticmethod
    def _apply(run: CheckRun, body: dict[str, Any]) -> None:
        if "status" in body:
            run.status = body["status"]
        elif body.get("conclusion"):
            run.status = "completed"
        run.history.append(run.status)
        run.conclusion = body.get("conclusion", run.conclusion)
        run.output = body.get("output", run.output)
        run.started_at = body.get("started_at", run.started_at)
        run.completed_at = body.get("completed_at", run.completed_at)

    def _render(self, run: CheckRun) -> dict[str, Any]:
        base = f"{self.url}/repos/{run.owner}/{run.repo}"
        return {
            "id": run.id,
            "head_sha": run.head_sha,
            "node_id": f"CR_{run.id}",
            "external_id": run.external_id,
            "url": f"{base}/check-runs/{run.id}",
            "html_url": f"https://github.com/{run.owner}/{run.repo}/runs/{run.id}",
            "details_url": None,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {
                "title": run.output.get("title"),
                "summary": run.output.get("summary"),
                "text": run.output.get("text"),
                "annotations_count": 0,
                "annotations_url": f"{base}/check-runs/{run.id}/annotations",
            },
            "name": run.name,
            "check_suite": {"id": run.id + 1},
            "app": None,
            "pull_requests": [],
        }


@contextmanager
def fake_github(app_id: int, private_key_pem: str) -> Iterator[FakeGitHub]:
    """The fake, served by uvicorn in a thread on a loopback socket bound to port 0 here (no
    port is picked and released, so no other process can take it in between)."""
    fake = FakeGitHub(app_id, private_key_pem)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(fake.app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fake GitHub did not start")
            threading.Event().wait(0.02)
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
