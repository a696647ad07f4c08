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
  /** Default: CONVEYOR_URL, RENDER_LOCAL_DEV_URL, http://localhost:8120 with
   * RENDER_USE_LOCAL_DEV=true, else http://127.0.0.1:8120 (`conveyor dev`). */
  baseUrl?: string;
  /** Default: CONVEYOR_API_KEY, else RENDER_API_KEY; none for `conveyor dev`. */
  apiKey?: string;
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

function defaultBaseUrl(): string {
  const env = process.env;
  if (env.CONVEYOR_URL) return env.CONVEYOR_URL;
  if (env.RENDER_LOCAL_DEV_URL) return env.RENDER_LOCAL_DEV_URL;
  if (env.RENDER_USE_LOCAL_DEV === "true") return "http://localhost:8120";
  return "http://127.0.0.1:8120";
}

export class WorkflowsClient {
  private readonly baseUrl: string;
  private readonly apiKey: string | undefined;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? defaultBaseUrl()).replace(/\/+$/, "");
    this.apiKey = options.apiKey ?? process.env.CONVEYOR_API_KEY ?? process.env.RENDER_API_KEY;
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
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
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Start a run of `workflow/task[:version]`; `input` is the task's arguments, in order. */
  async startTask(
    task: string,
    input: unknown[] | Record<string, unknown> = [],
    options: { idempotencyKey?: string } = {},
  ): Promise<{ taskRunId: string; get: () => Promise<TaskRun> }> {
    const run = await this.request<TaskRun>("POST", "/v1/task-runs", {
      task,
      input,
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
    });
    return { taskRunId: run.id, get: () => this.getTaskRun(run.id) };
  }

  /** Start a run and wait for its end (its `status`, `results`, `error`). */
  async runTask(
    task: string,
    input: unknown[] | Record<string, unknown> = [],
    options: { timeoutMs?: number } = {},
  ): Promise<TaskRun> {
    const { taskRunId } = await this.startTask(task, input);
    return this.waitForTaskRun(taskRunId, options.timeoutMs);
  }

  /** The run once it has ended; a ClientError with status 408 if `timeoutMs` passes first. */
  async waitForTaskRun(taskRunId: string, timeoutMs = 3_600_000): Promise<TaskRun> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) {
        throw new ClientError(`task run ${taskRunId} did not end within ${timeoutMs} ms`, 408);
      }
      const wait = Math.min(left, WAIT_SECONDS);
      const run = await this.request<TaskRun>(
        "GET",
        `/v1/task-runs/${encodeURIComponent(taskRunId)}?wait=${wait}`,
      );
      if (FINISHED.has(run.status)) return run;
    }
  }

  async getTaskRun(taskRunId: string): Promise<TaskRun> {
    return this.request<TaskRun>("GET", `/v1/task-runs/${encodeURIComponent(taskRunId)}`);
  }

  async listTaskRuns(
    filters: { limit?: number; cursor?: string; rootTaskRunId?: string } = {},
  ): Promise<TaskRun[]> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filters)) {
      if (value !== undefined) query.set(key, String(value));
    }
    const page = await this.request<{ taskRun: TaskRun }[]>("GET", `/v1/task-runs?${query}`);
    return page.map((item) => item.taskRun);
  }

  async cancelTaskRun(taskRunId: string): Promise<void> {
    await this.request<void>("DELETE", `/v1/task-runs/${encodeURIComponent(taskRunId)}`);
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
