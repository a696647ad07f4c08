// The client against a server that answers with Conveyor's REST shapes.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { ClientError, Render } from "../dist/index.js";
import { createWorkflowsClient } from "../dist/workflows/index.js";

const seen = [];
let server;
let baseUrl;
before(async () => {
  server = http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
      seen.push({ method: request.method, url: request.url, body, auth: request.headers.authorization });
      const send = (status, value) => {
        response.writeHead(status, { "Content-Type": "application/json" });
        response.end(value === undefined ? "" : JSON.stringify(value));
      };
      if (request.method === "POST" && body.task === "wf/missing") {
        return send(404, { message: "task 'wf/missing' not found", code: "not_found" });
      }
      if (request.method === "POST") return send(202, { id: "trn-1", status: "pending" });
      if (request.url === "/v1/task-runs/trn-1?wait=30") {
        return send(200, { id: "trn-1", status: "succeeded", results: [25] });
      }
      if (request.url.startsWith("/v1/task-runs?")) {
        return send(200, [{ taskRun: { id: "trn-1", status: "succeeded" }, cursor: "c1" }]);
      }
      if (request.method === "DELETE") return send(204);
      if (request.url === "/v1/task-runs/events?taskRunIds=trn-1&taskRunIds=trn-2") {
        response.writeHead(200, { "Content-Type": "text/event-stream" });
        response.write(": ping\n\n");
        response.write('event: task.completed\ndata: {"id": "trn-2", "status": "failed"}\n\n');
        setTimeout(() => {
          response.write('event: task.completed\r\ndata: {"id": "trn-1",\r\n');
          response.write('data: "status": "succeeded"}\r\n\r\n');
        }, 50);
        return undefined; // left open, as the server's stream is: the client ends it
      }
      return send(200, { id: "trn-1", status: "running" });
    });
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

test("runTask starts a run and waits for its end; the key goes in the header", async () => {
  const render = new Render({ baseUrl, apiKey: "cvk_test" });
  const run = await render.workflows.runTask("wf/add_squares", [3, 4]);
  assert.deepEqual([run.status, run.results], ["succeeded", [25]]);
  assert.deepEqual(seen[0], {
    method: "POST",
    url: "/v1/task-runs",
    body: { task: "wf/add_squares", input: [3, 4] },
    auth: "Bearer cvk_test",
  });
  assert.equal(seen[1].url, "/v1/task-runs/trn-1?wait=30");
});

test("start, get, list and cancel", async () => {
  const client = createWorkflowsClient({ baseUrl: `${baseUrl}/` });
  const started = await client.startTask("wf/add_squares", [1, 2], undefined, {
    idempotencyKey: "k1",
  });
  assert.equal(started.taskRunId, "trn-1");
  assert.deepEqual(seen.at(-1).body, { task: "wf/add_squares", input: [1, 2], idempotencyKey: "k1" });
  assert.equal((await client.getTaskRun("trn-1")).status, "running");
  assert.equal((await started.get()).status, "succeeded"); // get() waits for the end
  const page = await client.listTaskRuns({ limit: 5 });
  assert.deepEqual(page, [{ taskRun: { id: "trn-1", status: "succeeded" }, cursor: "c1" }]);
  assert.equal(seen.at(-1).url, "/v1/task-runs?limit=5");
  await client.cancelTaskRun("trn-1");
  assert.equal(seen.at(-1).method, "DELETE");
});

test("taskRunEvents yields each run as it ends, until all have", async () => {
  const client = createWorkflowsClient({ baseUrl });
  const ended = [];
  for await (const run of client.taskRunEvents(["trn-1", "trn-2"])) ended.push([run.id, run.status]);
  assert.deepEqual(ended, [["trn-2", "failed"], ["trn-1", "succeeded"]]);
});

test("Render's options and variables choose the server and the key", async () => {
  const saved = { ...process.env };
  const keySent = async (client) => {
    await client.getTaskRun("trn-1");
    return seen.at(-1).auth;
  };
  try {
    delete process.env.CONVEYOR_URL;
    delete process.env.CONVEYOR_API_KEY;
    delete process.env.RENDER_LOCAL_DEV_URL;
    process.env.RENDER_API_KEY = "rnd_key";
    process.env.RENDER_USE_LOCAL_DEV = "true";
    assert.equal(createWorkflowsClient().baseUrl, "http://localhost:8120");
    process.env.RENDER_LOCAL_DEV_URL = baseUrl;
    assert.equal(await keySent(createWorkflowsClient()), "Bearer rnd_key");
    delete process.env.RENDER_LOCAL_DEV_URL;
    const own = createWorkflowsClient({ localDevUrl: baseUrl, token: "t" });
    assert.equal(await keySent(own), "Bearer t");
    process.env.CONVEYOR_URL = baseUrl;
    process.env.CONVEYOR_API_KEY = "cvk_x";
    assert.equal(await keySent(createWorkflowsClient()), "Bearer cvk_x");
    assert.equal(await keySent(createWorkflowsClient({ token: "t" })), "Bearer t");
    assert.equal(createWorkflowsClient({ useLocalDev: true }).baseUrl, "http://localhost:8120");
  } finally {
    process.env = saved;
  }
});

test("an error answer is a ClientError with the server's message", async () => {
  const client = createWorkflowsClient({ baseUrl });
  await assert.rejects(client.startTask("wf/missing", []), (error) => {
    assert.ok(error instanceof ClientError);
    assert.equal(error.status, 404);
    assert.equal(error.code, "not_found");
    assert.equal(error.message, "task 'wf/missing' not found (HTTP 404)");
    return true;
  });
});

test("the version the worker sends is the package's", async () => {
  const { VERSION } = await import("../dist/index.js");
  const { readFile } = await import("node:fs/promises");
  const manifest = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(VERSION, manifest.version);
});
