// A worker process running flows, against a platform on a unix socket that answers as
// Conveyor's agent does: registration as tasks of kind "flow", a replay to the end, a pause
// (no callback), a flow rule's refusal (not retried) and a plain failure (retried).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

const WORKER = new URL("./fixtures/flows.mjs", import.meta.url).pathname;
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64");
const unb64 = (text) => JSON.parse(Buffer.from(text, "base64").toString());
const LIMITS = { max_steps: 100, max_payload_chars: 1000 };

let folder;
before(() => {
  folder = mkdtempSync(join(tmpdir(), "cvy-flow-worker-"));
});
after(() => rmSync(folder, { recursive: true, force: true }));

/** Serve one worker process: `answer(path, body)` gives each reply; every request is kept. */
async function platform(mode, answer) {
  const socketPath = join(folder, `${mode}-${Math.random().toString(16).slice(2)}.sock`);
  const requests = [];
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString();
      const body = text ? JSON.parse(text) : undefined;
      requests.push({ path: request.url, body });
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify(answer(request.url, body) ?? {}));
    });
  });
  await new Promise((done) => server.listen(socketPath, done));
  const child = spawn(process.execPath, [WORKER], {
    env: { ...process.env, RENDER_SDK_MODE: mode, RENDER_SDK_SOCKET_PATH: socketPath },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill(), 30_000);
  const code = await new Promise((done) => child.on("exit", done));
  clearTimeout(timer);
  server.close();
  return { code, requests, stderr };
}

const input = (name, args) => ({ task_name: name, input: b64(args), task_run_id: "trn-f", attempt: 1 });

test("flows register as tasks of kind flow, beside the tasks", async () => {
  const { code, requests } = await platform("register", () => undefined);
  assert.equal(code, 0);
  assert.deepEqual(requests.map((r) => r.path), ["/register-tasks"]);
  assert.deepEqual(requests[0].body.tasks, [
    { name: "add_one", options: {} },
    {
      name: "every_step",
      options: { retry: { max_retries: 1, wait_duration_ms: 0, factor: 1.5 }, timeout_seconds: 120 },
      parameters: [{ name: "n", has_default: false, schema: { type: "integer" } }],
      kind: "flow",
    },
    { name: "swallows", options: {}, kind: "flow" },
    { name: "fails", options: {}, kind: "flow" },
  ]);
});

test("an attempt that replays every step sends the flow's result", async () => {
  const recorded = [10, 11, null];
  const { code, requests } = await platform("run", (path, body) => {
    if (path === "/input") return input("every_step", [5]);
    if (path === "/flow-step") {
      return { status: "succeeded", result: recorded[body.seq - 1], failures: 0, last_seq: 3, ...LIMITS };
    }
    return undefined;
  });
  assert.equal(code, 0);
  assert.deepEqual(
    requests.map((r) => [r.path, r.body?.seq, r.body?.type, r.body?.name]),
    [
      ["/input", undefined, undefined, undefined],
      ["/flow-step", 1, "inline", "double"],
      ["/flow-step", 2, "detached", "add_one"],
      ["/flow-step", 3, "sleep", "sleep"],
      ["/callback", undefined, undefined, undefined],
    ],
  );
  const { complete } = requests.at(-1).body;
  assert.deepEqual(unb64(complete.output), [{ a: 10, b: 11, attempt: 1, runId: "trn-f" }]);
});

test("a sleep that is not due ends the attempt without a callback", async () => {
  const { code, requests } = await platform("run", (path, body) => {
    if (path === "/input") return input("every_step", [5]);
    if (path === "/flow-step") return { status: "running", failures: 0, last_seq: body.seq, ...LIMITS };
    if (path === "/run-subtask") return { task_run_id: "trn-child" };
    if (path === "/get-subtask-result") return { still_running: false, complete: { output: b64([11]) } };
    if (path === "/flow-pause") return { wake_at: "2030-01-01T00:00:00+00:00" };
    return undefined;
  });
  assert.equal(code, 0);
  assert.deepEqual(requests.map((r) => r.path), [
    "/input",
    "/flow-step",
    "/flow-step-done",
    "/flow-step",
    "/run-subtask",
    "/flow-step-child",
    "/get-subtask-result",
    "/flow-step-done",
    "/flow-step",
    "/flow-pause",
  ]);
});

test("a flow rule's refusal fails the run without retry, even when the flow catches it", async () => {
  const details = { code: "flow_step_limit_exceeded", seq: 1, limit: 0, value: 1 };
  const message = "flow_step_limit_exceeded: the step count at step 1 is 1, over the limit of 0";
  const { code, requests } = await platform("run", (path) => {
    if (path === "/input") return input("swallows", []);
    if (path === "/flow-step") return { status: "refused", message, details };
    return undefined;
  });
  assert.equal(code, 1);
  const { error } = requests.at(-1).body;
  assert.equal(error.details, `FlowLimitError: ${message}`);
  assert.equal(error.retryable, false);
});

test("a flow's own failure is retried, with its stack", async () => {
  const { code, requests, stderr } = await platform("run", (path) =>
    path === "/input" ? input("fails", []) : undefined,
  );
  assert.equal(code, 1);
  const { error } = requests.at(-1).body;
  assert.equal(error.details, "RangeError: no flow today");
  assert.match(error.stack_trace, /^RangeError: no flow today\n {4}at /);
  assert.equal(error.retryable, true);
  assert.match(stderr, /RangeError: no flow today/);
});
