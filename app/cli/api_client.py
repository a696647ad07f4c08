"""The CLI's HTTP calls to a Conveyor server, kept in one place (a thin layer over REST v1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from app.cli.errors import CliError

Obj = dict[str, Any]


class ApiClient:
    def __init__(self, url: str, api_key: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def start(self, task: str, run_input: Any) -> Obj:
        run: Obj = self._json("POST", "/v1/task-runs", json={"task": task, "input": run_input})
        return run

    def get(self, run_id: str, wait: float = 0.0) -> Obj:
        params = {"wait": f"{wait:g}"} if wait > 0 else {}
        run: Obj = self._json("GET", f"/v1/task-runs/{run_id}", params=params, timeout=wait + 30)
        return run

    def list_runs(self, params: dict[str, Any]) -> list[Obj]:
        items: list[Obj] = self._json("GET", "/v1/task-runs", params=params)
        return items

    def cancel(self, run_id: str) -> None:
        self._request("DELETE", f"/v1/task-runs/{run_id}")

    def flow_run(self, flow_run_id: str) -> Obj:
        run: Obj = self._json("GET", f"/v1/flow-runs/{flow_run_id}")
        return run

    def rerun_flow(self, flow_run_id: str) -> Obj:
        # a JSON body, as every write: the cross-site guard refuses other content types
        run: Obj = self._json("POST", f"/v1/flow-runs/{flow_run_id}/rerun", json={})
        return run

    def task(self, task_ref: str) -> Obj:
        task: Obj = self._json("GET", f"/v1/tasks/{task_ref}")
        return task

    def tasks(self) -> list[Obj]:
        items: list[Obj] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100} | ({"cursor": cursor} if cursor else {})
            page = self._json("GET", "/v1/tasks", params=params)
            items.extend(item["task"] for item in page)
            if len(page) < 100:
                return items
            cursor = page[-1]["cursor"]

    def logs(self, run_id: str, attempt: int | None, follow: bool) -> Iterator[bytes]:
        params: dict[str, Any] = {"taskRun": run_id}
        if attempt is not None:
            params["attempt"] = attempt
        if follow:
            params["follow"] = "true"
        try:
            with self._http.stream("GET", "/v1/logs", params=params, timeout=None) as response:
                if response.is_error:
                    response.read()
                    raise _api_error(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.is_error:
            raise _api_error(response)
        return response

    def _unreachable(self, exc: httpx.TransportError) -> CliError:
        cause = str(exc) or type(exc).__name__
        return CliError(
            f"cannot reach the Conveyor server at {self.url} ({cause}); a server elsewhere "
            "(`conveyor dev --port N` prints its URL) is named with --url or CONVEYOR_URL"
        )


def _api_error(response: httpx.Response) -> CliError:
    try:
        message = str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()[:200] or response.reason_phrase
    return CliError(f"{message} (HTTP {response.status_code})")
