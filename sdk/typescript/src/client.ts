/** A client of Conveyor's REST API (Render's shapes): start, wait for, read, list, cancel runs. */

export type RunStatus = "pending" | "running" | "succeeded" | "failed" | "canceled";

export interface TaskRunAttempt {
  attempt: number;
  status: RunStatus;
  startedAt?: string;
  completedAt?: string;
  error?: string;
  stackTrace?: string;
}

export interface TaskRun {
  id: string;
  taskId: string;
  status: RunStatus;
  parentTaskRunId: string;
  rootTaskRunId: string;
  retries: number;
  startedAt?: string;
  completedAt?: string;
  results?: unknown[];
  error?: string;
  input?: unknown;
  attempts?: TaskRunAttempt[];
}

export interface ClientOptions {
  /** Default: `localDevUrl`, `useLocalDev` (http://localhost:8120), CONVEYOR_URL,
   * RENDER_LOCAL_DEV_URL, RENDER_USE_LOCAL_DEV=true, else http://127.0.0.1:8120. */
  baseUrl?: string;
  /** Conveyor's API key. Default: `token`, CONVEYOR_API_KEY, else RENDER_API_KEY; none for
   * `conveyor dev`. */
  apiKey?: string;
  /** Render's name for the key. */
  token?: string;
  useLocalDev?: boolean;
  localDevUrl?: string;
}

/** A started run: its id, and `get()` that waits for its end. */
export interface TaskRunResult {
  readonly taskRunId: string;
  get(): Promise<TaskRun>;
}

/** The API refused a request (4xx) or failed (5xx); `message` is the server's. */
export class ClientError extends Error {
  override name = "ClientError";
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

const FINISHED: ReadonlySet<RunStatus> = new Set(["succeeded", "failed", "canceled"]);
const WAIT_SECONDS = 30;

function defaultBaseUrl(options: ClientOptions): string {
  const env = process.env;
  if (options.localDevUrl) return options.localDevUrl;
  if (options.useLocalDev) return "http://localhost:8120";
  if (env.CONVEYOR_URL) return env.CONVEYOR_URL;
  if (env.RENDER_LOCAL_DEV_URL) return env.RENDER_LOCAL_DEV_URL;
  if (env.RENDER_USE_LOCAL_DEV === "true") return "http://localhost:8120";
  return "http://127.0.0.1:8120";
}

/** `event:`/`data:` blocks of a server-sent event stream, as they arrive. */
async function* serverSentEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, "\n");
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
      end = buffer.indexOf("\n\n");
    }
  }
}

export class WorkflowsClient {
  /** Where the API is, without a trailing slash. */
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? defaultBaseUrl(options)).replace(/\/+$/, "");
    this.apiKey =
      options.apiKey ?? options.token ?? process.env.CONVEYOR_API_KEY ?? process.env.RENDER_API_KEY;
  }

  private async send(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (!response.ok) await this.fail(response);
    return response;
  }

  private async fail(response: Response): Promise<never> {
    const text = await response.text();
    let message = text;
    let code: string | undefined;
    try {
      const parsed = JSON.parse(text) as { message?: string; code?: string };
      message = parsed.message ?? text;
      code = parsed.code;
    } catch {
      // not JSON: the text itself says what went wrong
    }
    throw new ClientError(`${message} (HTTP ${response.status})`, response.status, code);
  }

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<T> {
    const response = await this.send(method, path, body, signal);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Start a run of `workflow/task[:version]`; `input` is the task's arguments, in order. */
  async startTask(
    task: string,
    input: unknown[] | Record<string, unknown> = [],
    signal?: AbortSignal,
    options: { idempotencyKey?: string } = {},
  ): Promise<TaskRunResult> {
    const run = await this.request<TaskRun>(
      "POST",
      "/v1/task-runs",
      { task, input, ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}) },
      signal,
    );
    return { taskRunId: run.id, get: () => this.waitForTaskRun(run.id, undefined, signal) };
  }

  /** Start a run and wait for its end (its `status`, `results`, `error`). */
  async runTask(
    task: string,
    input: unknown[] | Record<string, unknown> = [],
    signal?: AbortSignal,
  ): Promise<TaskRun> {
    return (await this.startTask(task, input, signal)).get();
  }

  /** The run once it has ended; a ClientError with status 408 if `timeoutMs` passes first. */
  async waitForTaskRun(
    taskRunId: string,
    timeoutMs = 86_400_000,
    signal?: AbortSignal,
  ): Promise<TaskRun> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) {
        throw new ClientError(`task run ${taskRunId} did not end within ${timeoutMs} ms`, 408);
      }
      const wait = Math.min(left, WAIT_SECONDS);
      const path = `/v1/task-runs/${encodeURIComponent(taskRunId)}?wait=${wait}`;
      const run = await this.request<TaskRun>("GET", path, undefined, signal);
      if (FINISHED.has(run.status)) return run;
    }
  }

  async getTaskRun(taskRunId: string): Promise<TaskRun> {
    return this.request<TaskRun>("GET", `/v1/task-runs/${encodeURIComponent(taskRunId)}`);
  }

  /** A page of runs, newest first: `{ taskRun, cursor }` items (pass a cursor for the next). */
  async listTaskRuns(
    params: { limit?: number; cursor?: string; rootTaskRunId?: string; taskSlug?: string } = {},
  ): Promise<{ taskRun: TaskRun; cursor: string }[]> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined) query.set(key, String(value));
    }
    return this.request("GET", `/v1/task-runs?${query}`);
  }

  async cancelTaskRun(taskRunId: string): Promise<void> {
    await this.send("DELETE", `/v1/task-runs/${encodeURIComponent(taskRunId)}`);
  }

  /** Each of the runs as it ends (at once for one already ended), until all have. */
  async *taskRunEvents(taskRunIds: string[], signal?: AbortSignal): AsyncGenerator<TaskRun> {
    const query = new URLSearchParams(taskRunIds.map((id) => ["taskRunIds", id]));
    const response = await this.send("GET", `/v1/task-runs/events?${query}`, undefined, signal);
    if (response.body === null) return;
    const waiting = new Set(taskRunIds);
    for await (const message of serverSentEvents(response.body)) {
      if (message.event !== "task.completed") continue;
      const run = JSON.parse(message.data) as TaskRun;
      yield run;
      waiting.delete(run.id);
      if (waiting.size === 0) break;
    }
  }
}

/** Render's `new Render().workflows`, against Conveyor: `Render` is an alias of this class. */
export class Conveyor {
  readonly workflows: WorkflowsClient;

  constructor(options: ClientOptions = {}) {
    this.workflows = new WorkflowsClient(options);
  }
}

export function createWorkflowsClient(options: ClientOptions = {}): WorkflowsClient {
  return new WorkflowsClient(options);
}
