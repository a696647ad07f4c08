// The worker side of the instance protocol, against a platform on a unix socket that answers
// as Conveyor's agent does (RENDER-PROTOCOL.md): registration, a run with children, a failure.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

const WORKER = new URL("./fixtures/worker.mjs", import.meta.url).pathname;
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64");
const unb64 = (text) => JSON.parse(Buffer.from(text, "base64").toString());

let folder;
before(() => {
  folder = mkdtempSync(join(tmpdir(), "cvy-ts-"));
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
      requests.push({ path: request.url, body, userAgent: request.headers["user-agent"] });
      const reply = answer(request.url, body);
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(reply === undefined ? "" : JSON.stringify(reply));
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
  const code = await new Promise((done) => child.on("exit", done));
  server.close();
  return { code, requests, stderr };
}

test("registration carries options, typed parameters and the SDK's User-Agent", async () => {
  const { code, requests } = await platform("register", () => undefined);
  assert.equal(code, 0);
  assert.equal(requests.length, 1);
  const [{ path, body, userAgent }] = requests;
  assert.equal(path, "/register-tasks");
  assert.match(userAgent, /^conveyor-sdk-typescript\/0\.1\.0 \(node\/\d+/);
  const byName = Object.fromEntries(body.tasks.map((t) => [t.name, t]));
  assert.deepEqual(byName.add_squares, {
    name: "add_squares",
    options: {
      retry: { max_retries: 2, wait_duration_ms: 100, factor: 1.5 },
      timeout_seconds: 60,
      plan: "starter",
    },
    parameters: [
      { name: "a", has_default: false, schema: { type: "integer" } },
      { name: "b", has_default: true, default_value: "0", schema: { type: "integer" } },
    ],
    description: "a² + b²",
  });
  assert.deepEqual(byName.fails, { name: "fails", options: {} });
});

test("a run starts its children, waits for them and reports its result", async () => {
  const children = new Map();
  const { code, requests } = await platform("run", (path, body) => {
    if (path === "/input") return { task_name: "add_squares", input: b64([3, 4]), task_run_id: "trn-1" };
    if (path === "/run-subtask") {
      const id = `trn-child-${children.size}`;
      children.set(id, unb64(body.input));
      return { task_run_id: id };
    }
    if (path === "/get-subtask-result") {
      const [a] = children.get(body.task_run_id);
      return { still_running: false, complete: { output: b64([a * a]) } };
    }
    return undefined;
  });
  assert.equal(code, 0);
  const subtasks = requests.filter((r) => r.path === "/run-subtask").map((r) => r.body);
  assert.deepEqual(subtasks.map((s) => [s.task_name, unb64(s.input)]), [["square", [3]], ["square", [4]]]);
  assert.ok(subtasks.every((s) => /^[0-9a-f-]{36}$/.test(s.idempotency_key)));
  const callback = requests.find((r) => r.path === "/callback").body;
  assert.deepEqual(unb64(callback.complete.output), [25]);
});

test("a failure sends its message and its JavaScript stack; bad input is not retried", async () => {
  const failed = await platform("run", (path) =>
    path === "/input" ? { task_name: "fails", input: b64([]) } : undefined,
  );
  assert.equal(failed.code, 1);
  const error = failed.requests.find((r) => r.path === "/callback").body.error;
  assert.equal(error.details, "RangeError: out of range");
  assert.match(error.stack_trace, /^RangeError: out of range\n {4}at /);
  assert.equal(error.retryable, true);
  assert.match(failed.stderr, /RangeError: out of range/);

  const refused = await platform("run", (path) =>
    path === "/input" ? { task_name: "square", input: b64(["three"]) } : undefined,
  );
  assert.equal(refused.code, 1);
  const bad = refused.requests.find((r) => r.path === "/callback").body.error;
  assert.equal(bad.details, `InvalidInputError: task 'square' cannot take this input: a: expected integer, got "three"`);
  assert.equal(bad.retryable, false);
});
