// A flow's steps against a platform on a unix socket that answers the flow protocol
// (docs/flows.md) from a script and keeps every request: the bodies must be the Python SDK's.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { FlowChannel } from "../dist/workflows/flowChannel.js";
import { FlowContext } from "../dist/workflows/flowContext.js";
import { FlowDeterminismError, FlowLimitError, TaskRunError } from "../dist/workflows/index.js";
import { inputHash, pythonJson } from "../dist/workflows/pythonJson.js";

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64");
const LIMITS = { max_steps: 100, max_payload_chars: 1000 };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let folder;
const servers = [];
before(() => {
  folder = mkdtempSync(join(tmpdir(), "cvy-flow-"));
});
after(() => {
  for (const server of servers) {
    server.close();
    server.closeAllConnections(); // a failed test may leave a request held
  }
  rmSync(folder, { recursive: true, force: true });
});

/**
 * A platform answering `answer(path, body)` (or a promise of it); `requests` holds each
 * {path, body} in the order they came.
 */
async function platform(answer) {
  const socketPath = join(folder, `${Math.random().toString(16).slice(2)}.sock`);
  const requests = [];
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || "null");
      requests.push({ path: request.url, body });
      const reply = (await answer(request.url, body)) ?? {};
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify(reply));
    });
  });
  await new Promise((done) => server.listen(socketPath, done));
  servers.push(server);
  const ctx = new FlowContext(new FlowChannel(socketPath), {
    flowName: "f",
    runId: "trn-1",
    attempt: 0,
  });
  return { ctx, requests, close: () => server.close() };
}

/** The requests without their clock readings, which are checked for their form. */
function withoutTimes(requests) {
  return requests.map(({ path, body }) => {
    const { started_at: started, created_at: created, ...rest } = body;
    for (const time of [started, created]) if (time !== undefined) assert.match(time, ISO);
    return { path, body: rest };
  });
}

/** A step function that counts its runs. */
function counted(name, body) {
  const fn = { [name]: (...args) => (fn.runs++, body(...args)) }[name];
  fn.runs = 0;
  return fn;
}

test("a replayed step returns its recorded result without running", async () => {
  const { ctx, requests, close } = await platform((path) =>
    path === "/flow-step" ? { status: "succeeded", result: 10, failures: 0, last_seq: 2, ...LIMITS } : {},
  );
  const double = counted("double", (n) => n * 2);
  assert.equal(await ctx.step(double, 5), 10);
  assert.equal(await ctx.step(double, 7), 10);
  close();
  assert.equal(double.runs, 0);
  assert.deepEqual(requests, [
    { path: "/flow-step", body: { seq: 1, type: "inline", name: "double", input: [5] } },
    { path: "/flow-step", body: { seq: 2, type: "inline", name: "double", input: [7] } },
  ]);
});

test("a new step past the log's end runs first and is recorded with its result", async () => {
  const { ctx, requests, close } = await platform((path, body) => {
    if (path === "/flow-step") {
      return { status: "running", failures: 0, last_seq: body.seq, ...LIMITS, max_payload_chars: 9 };
    }
    if (path === "/flow-step-record") return { status: "succeeded", failures: 0 };
    return {};
  });
  const double = counted("double", (n) => n * 2);
  const shout = counted("shout", (text) => `${text}!`);
  assert.equal(await ctx.step(double, 5), 10);
  assert.equal(await ctx.step(double, 10), 20);
  // ["é"] is 5 characters to JavaScript, ["\u00e9"] 10 to the platform: over 9, asked for first
  assert.equal(await ctx.step(shout, "é"), "é!");
  close();
  assert.deepEqual([double.runs, shout.runs], [2, 1]);
  assert.deepEqual(withoutTimes(requests), [
    { path: "/flow-step", body: { seq: 1, type: "inline", name: "double", input: [5] } },
    { path: "/flow-step-done", body: { seq: 1, result: 10 } },
    {
      path: "/flow-step-record",
      body: { seq: 2, type: "inline", name: "double", input: [10], result: 20 },
    },
    { path: "/flow-step", body: { seq: 3, type: "inline", name: "shout", input: ["é"] } },
    { path: "/flow-step-done", body: { seq: 3, result: "é!" } },
  ]);
});

test("a failing step retries in place and records each failed try", async () => {
  const { ctx, requests, close } = await platform((path, body) =>
    path === "/flow-step" ? { status: "running", failures: 0, last_seq: body.seq, ...LIMITS } : {},
  );
  const flaky = counted("flaky", () => {
    if (flaky.runs <= 2) throw new RangeError(`flaky ${flaky.runs}`);
    return "ok";
  });
  const retry = { maxRetries: 2, waitDurationMs: 1 };
  assert.equal(await ctx.step({ retry }, flaky), "ok");
  // a new step (seq 2 is past the log) is announced before its failure is recorded
  const broken = counted("broken", () => {
    throw new TypeError("always");
  });
  await assert.rejects(ctx.step({ retry: { maxRetries: 1, waitDurationMs: 0 } }, broken, 1), TypeError);
  close();
  assert.deepEqual([flaky.runs, broken.runs], [3, 2]);
  assert.deepEqual(withoutTimes(requests), [
    { path: "/flow-step", body: { seq: 1, type: "inline", name: "flaky", input: [] } },
    { path: "/flow-step-failed", body: { seq: 1, error: "RangeError: flaky 1", final: false } },
    { path: "/flow-step-failed", body: { seq: 1, error: "RangeError: flaky 2", final: false } },
    { path: "/flow-step-done", body: { seq: 1, result: "ok" } },
    { path: "/flow-step", body: { seq: 2, type: "inline", name: "broken", input: [1] } },
    { path: "/flow-step-failed", body: { seq: 2, error: "TypeError: always", final: false } },
    { path: "/flow-step-failed", body: { seq: 2, error: "TypeError: always", final: true } },
  ]);
});

test("a try past its timeout is a failed try", async () => {
  const { ctx, requests, close } = await platform((path, body) =>
    path === "/flow-step" ? { status: "running", failures: 0, last_seq: body.seq, ...LIMITS } : {},
  );
  const slow = counted("slow", () => new Promise((done) => setTimeout(() => done("late"), 5_000).unref()));
  await assert.rejects(ctx.step({ timeoutSeconds: 0.05, name: "slow-call" }, slow), {
    name: "StepTimeoutError",
    message: "step 1 (slow-call) took longer than 0.05 s",
  });
  close();
  assert.deepEqual(withoutTimes(requests).slice(1), [
    {
      path: "/flow-step-failed",
      body: { seq: 1, error: "StepTimeoutError: step 1 (slow-call) took longer than 0.05 s", final: true },
    },
  ]);
});

test("a determinism refusal raises FlowDeterminismError; nothing runs after it", async () => {
  const details = {
    code: "flow_determinism_error",
    message:
      "flow_determinism_error: step 1 was recorded as inline:first, this attempt reached inline:double",
    kind: "type",
    seq: 1,
    expected: "inline:first",
    actual: "inline:double",
  };
  const { ctx, requests, close } = await platform(() => ({
    status: "refused",
    message: details.message,
    details,
  }));
  const double = counted("double", (n) => n * 2);
  const refused = await ctx.step(double, 5).catch((error) => error);
  assert.ok(refused instanceof FlowDeterminismError);
  assert.equal(refused.message, details.message);
  assert.deepEqual(refused.details, details);
  // the attempt is over: a flow that caught it reaches no further step
  await assert.rejects(ctx.sleep(1), FlowDeterminismError);
  close();
  assert.equal(double.runs, 0);
  assert.equal(requests.length, 1);
});

test("a limit refused with a step's result raises FlowLimitError", async () => {
  const details = { code: "flow_history_too_large", seq: 1, limit: 8, value: 11 };
  const { ctx, close } = await platform((path) => {
    if (path === "/flow-step") return { status: "running", failures: 0, last_seq: 1, ...LIMITS };
    return { status: "refused", message: "flow_history_too_large: ...", details };
  });
  await assert.rejects(ctx.step((n) => n * 2, 5), (error) => {
    assert.ok(error instanceof FlowLimitError && !(error instanceof FlowDeterminismError));
    assert.deepEqual(error.details, details);
    return true;
  });
  close();
});

const CALL_ORDER = "steps started together get their seq in the order they were called";
test(CALL_ORDER, { timeout: 10_000 }, async () => {
  // b ends first; c once the platform has b's result, a once it has c's: they end in another
  // order than they were called
  const gate = () => {
    let open;
    const opened = new Promise((done) => {
      open = done;
    });
    return { open, opened };
  };
  const [cMayEnd, aMayEnd] = [gate(), gate()];
  const { ctx, requests, close } = await platform((path, body) => {
    if (path === "/flow-step") return { status: "running", failures: 0, last_seq: body.seq, ...LIMITS };
    if ("result" in body) (body.result === "b" ? cMayEnd : aMayEnd).open();
    return {};
  });
  const results = await Promise.all([
    ctx.step(function a() {
      return aMayEnd.opened.then(() => "a");
    }),
    ctx.step(function b() {
      return "b";
    }),
    ctx.step(function c() {
      return cMayEnd.opened.then(() => "c");
    }),
  ]);
  close();
  assert.deepEqual(results, ["a", "b", "c"]);
  const begun = requests.filter((r) => r.path === "/flow-step").map((r) => [r.body.seq, r.body.name]);
  assert.deepEqual(begun.sort(), [[1, "a"], [2, "b"], [3, "c"]]);
  const done = requests.filter((r) => "result" in r.body).map((r) => r.body);
  assert.deepEqual(done, [
    { seq: 2, result: "b" },
    { seq: 3, result: "c" },
    { seq: 1, result: "a" },
  ]);
});

test("the input hash is the platform's, for the input the step sends", async () => {
  const { ctx, requests, close } = await platform(() => ({
    status: "succeeded",
    result: null,
    failures: 0,
    last_seq: 1,
    ...LIMITS,
  }));
  const order = { b: 1.5, a: "é", n: 1e16, x: 1e-7, "\uff21": null, "\u{1F600}": [true] };
  await ctx.step(function charge() {}, "o-1", order);
  close();
  const sent = requests[0].body.input;
  assert.deepEqual(sent, ["o-1", order]);
  // the platform's scheduler/flows/protocol.py input_hash of the value it parses from the request:
  //   python3 -c 'import hashlib, json; v = ["o-1", {"b": 1.5, "a": "é", "n": 10**16, "x": 1e-7,
  //     "\uff21": None, "\U0001F600": [True]}]; print(hashlib.sha256(json.dumps(v, sort_keys=True,
  //     separators=(",", ":"), ensure_ascii=False).encode()).hexdigest())'
  assert.equal(inputHash(sent), "9348eea95e673c6cdebcea0321ade2e8c5950f083b66d1af18b9c3511a4efdb5");
  assert.equal(
    pythonJson(sent, { sortKeys: true, compact: true, ensureAscii: false }),
    '["o-1",{"a":"é","b":1.5,"n":10000000000000000,"x":1e-07,"Ａ":null,"😀":[true]}]',
  );
  // the size the platform's limits measure: len(json.dumps(v)), 110 characters
  assert.equal(pythonJson(sent).length, 110);
});

test("a detached step starts its run once, under the step's idempotency key", async () => {
  const { ctx, requests, close } = await platform((path) => {
    if (path === "/flow-step") return { status: "failed", failures: 1, last_seq: 1, ...LIMITS };
    if (path === "/run-subtask") return { task_run_id: "trn-child" };
    if (path === "/get-subtask-result") return { still_running: false, complete: { output: b64([11]) } };
    return {};
  });
  assert.equal(await ctx.run({ name: "add_one" }, 10), 11);
  close();
  assert.deepEqual(withoutTimes(requests), [
    { path: "/flow-step", body: { seq: 1, type: "detached", name: "add_one", input: [10] } },
    {
      path: "/run-subtask",
      body: { task_name: "add_one", input: b64([10]), idempotency_key: "flow-step-1-1" },
    },
    { path: "/flow-step-child", body: { seq: 1, task_run_id: "trn-child" } },
    { path: "/get-subtask-result", body: { task_run_id: "trn-child", hold: true } },
    { path: "/flow-step-done", body: { seq: 1, result: 11 } },
  ]);
});

test("a replayed detached step awaits its running child; a failed child fails the step", async () => {
  const { ctx, requests, close } = await platform((path) => {
    if (path === "/flow-step") {
      return { status: "running", failures: 0, task_run_id: "trn-child", last_seq: 1, ...LIMITS };
    }
    if (path === "/get-subtask-result") {
      return { still_running: false, error: { details: "ValueError: no" } };
    }
    return {};
  });
  await assert.rejects(ctx.run("add_one", 10), (error) => {
    assert.ok(error instanceof TaskRunError);
    assert.equal(error.message, "Subtask failed: ValueError: no");
    return true;
  });
  close();
  assert.deepEqual(withoutTimes(requests).map((r) => r.path), [
    "/flow-step",
    "/get-subtask-result",
    "/flow-step-failed",
  ]);
  assert.deepEqual(withoutTimes(requests)[2].body, {
    seq: 1,
    error: "Subtask failed: ValueError: no",
    final: true,
  });
});

test("a sleep not due pauses the flow once the detached steps called before it have runs", async () => {
  let paused;
  const pause = new Promise((done) => {
    paused = done;
  });
  const { ctx, requests, close } = await platform((path, body) => {
    if (path === "/flow-step" && body.type === "sleep") {
      const wake = "2030-01-01T00:00:00+00:00";
      return { status: "running", failures: 0, wake_at: wake, last_seq: 2, ...LIMITS };
    }
    if (path === "/flow-step") return { status: "running", failures: 0, last_seq: 1, ...LIMITS };
    if (path === "/run-subtask") return { task_run_id: "trn-child" };
    if (path === "/flow-pause") paused();
    // held until the attempt ended, as the platform holds it while the child runs
    if (path === "/get-subtask-result") {
      return pause.then(() => ({ still_running: false, complete: { output: b64([2]) } }));
    }
    return {};
  });
  const child = ctx.run("add_one", 1);
  try {
    await assert.rejects(ctx.sleep(30), { name: "FlowPaused" });
    await assert.rejects(ctx.step(() => 1), { name: "FlowPaused" });
  } finally {
    paused(); // the child's result, however the test went
    assert.equal(await child, 2);
    close();
  }
  const paths = requests.map((r) => r.path);
  assert.deepEqual(paths.slice(0, 4), ["/flow-step", "/flow-step", "/run-subtask", "/flow-step-child"]);
  assert.ok(paths.indexOf("/flow-step-child") < paths.indexOf("/flow-pause"));
  assert.deepEqual(requests.find((r) => r.body.type === "sleep").body, {
    seq: 2,
    type: "sleep",
    name: "sleep",
    input: [30],
    sleep_seconds: 30,
  });
  assert.deepEqual(requests.find((r) => r.path === "/flow-pause").body, { seq: 2 });
});

test("sleepUntil sends its wake time; a sleep that is over returns", async () => {
  const { ctx, requests, close } = await platform(() => ({
    status: "succeeded",
    failures: 0,
    last_seq: 1,
    ...LIMITS,
  }));
  await ctx.sleepUntil(new Date("2024-05-01T12:00:00.250+02:00"));
  close();
  assert.deepEqual(requests, [
    {
      path: "/flow-step",
      body: {
        seq: 1,
        type: "sleep",
        name: "sleep",
        input: ["2024-05-01T10:00:00.250Z"],
        wake_at: "2024-05-01T10:00:00.250Z",
      },
    },
  ]);
});
