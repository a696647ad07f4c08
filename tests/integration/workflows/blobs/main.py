"""Tasks whose payloads and logs are big enough to land in the blob store."""

import os
import sys
from pathlib import Path

from conveyor import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def big_output(megabytes: int, padding: str) -> dict[str, object]:
    print(f"making {megabytes} MB (input padding {len(padding)} chars)", flush=True)
    body = "".join(chr(ord("a") + i % 26) for i in range(1024)) * (megabytes * 1024)
    print("made it", flush=True)
    return {"size": len(body), "body": body}


@app.task(retry=Retry(max_retries=2, wait_duration_ms=0))
def fails_once(tag: str) -> str:
    attempt = os.environ["CONVEYOR_ATTEMPT"]
    print(f"{tag}: attempt {attempt} starts", flush=True)
    print(f"{tag}: attempt {attempt} on stderr", file=sys.stderr, flush=True)
    # in the test's scratch folder (the version's own is read-only to its tasks)
    marker = Path(os.environ["ENGINE_SCRATCH"]) / f"failed-{tag}"
    if not marker.exists():
        marker.touch()
        raise RuntimeError(f"{tag}: attempt {attempt} fails on purpose")
    return f"{tag}: done on attempt {attempt}"
