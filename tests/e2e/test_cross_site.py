"""A page on another loopback origin tries to drive the dev server from Chromium: nothing happens.

The page uses what any web page may send without the server's permission: `no-cors` fetches
with text/plain, form and multipart bodies, and plain HTML form posts (the text/plain form
even builds valid JSON). The dev server (anonymous workspace, as `conveyor dev`) must refuse
every one, and the same bodies sent as JSON by a non-browser client must still work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.live_server import WS, LiveServer
from tests.e2e.runs import run_ids

pytestmark = pytest.mark.slow

ATTACKER_PAGE = b"""<!doctype html>
<title>an innocent page</title>
<form id="json-form" method="post" enctype="text/plain" target="sink-1">
  <input name='{"task":"hello/square","input":[3],"pad":"' value='"}'>
</form>
<form id="url-form" method="post" target="sink-2">
  <input name="task" value="hello/square"><input name="repo" value="file:///tmp/acme/evil">
</form>
<iframe name="sink-1"></iframe><iframe name="sink-2"></iframe>
"""

ATTACK = """async (api) => {
  const bodies = {
    "/v1/task-runs": JSON.stringify({task: "hello/square", input: [3]}),
    "/v1/workflows": JSON.stringify({name: "evil", repo: "file:///tmp/acme/evil"}),
  };
  const shots = [];
  for (const [path, body] of Object.entries(bodies)) {
    const form = new FormData();
    form.append("body", body);
    for (const init of [
      {body},
      {body, headers: {"Content-Type": "text/plain"}},
      {body: new URLSearchParams({body})},
      {body: form},
    ]) {
      shots.push(fetch(api + path, {method: "POST", mode: "no-cors", ...init}));
    }
  }
  await Promise.allSettled(shots);
  let submitted = 0;
  for (const path of Object.keys(bodies)) {
    for (const [formId, sink] of [["json-form", "sink-1"], ["url-form", "sink-2"]]) {
      const loaded = new Promise((resolve) =>
        document.querySelector(`iframe[name=${sink}]`).addEventListener(
          "load", resolve, {once: true}));
      const form = document.getElementById(formId);
      form.action = api + path;
      form.submit();
      await loaded;
      submitted += 1;
    }
  }
  return shots.length + submitted;
}"""


class _Refusals(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def refusals() -> Iterator[_Refusals]:
    handler = _Refusals()
    guard = logging.getLogger("conveyor.api.guard")
    guard.addHandler(handler)
    yield handler
    guard.removeHandler(handler)


@pytest.fixture
def attacker_origin() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(ATTACKER_PAGE)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="attacker-page", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def stored(server: LiveServer) -> tuple[set[str], set[str]]:
    """The ids of every run and every workflow of the workspace."""
    workflows = server.call(server.engine.service.list_workflows(WS))
    return run_ids(server), {workflow.id for workflow in workflows}


def test_a_foreign_page_creates_nothing(
    page: Page, server: LiveServer, attacker_origin: str, refusals: _Refusals
) -> None:
    assert attacker_origin != server.url
    before = stored(server)
    page.goto(attacker_origin)
    sent = page.evaluate(ATTACK, server.url)

    assert sent == 12
    assert stored(server) == before
    # every request reached the server and was refused there, for its foreign Origin
    assert len(refusals.messages) == sent, refusals.messages
    assert all(f"Origin '{attacker_origin}'" in m for m in refusals.messages)

    # the same requests as JSON from a client that is no browser page still work
    with httpx.Client(base_url=server.url, timeout=30) as client:
        run = client.post("/v1/task-runs", json={"task": "hello/square", "input": [3]})
        assert run.status_code == 202, run.text
        workflow = client.post(
            "/v1/workflows", json={"name": "control", "repo": "file:///tmp/acme/control"}
        )
        assert workflow.status_code == 201, workflow.text
        runs, workflows = stored(server)
        assert runs == before[0] | {run.json()["id"]}
        assert workflows == before[1] | {workflow.json()["id"]}
        assert client.delete(f"/v1/workflows/{workflow.json()['id']}").status_code == 204
