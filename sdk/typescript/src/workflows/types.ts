import type { JsonSchema } from "./schema.js";

/** How a failed run is tried again: `waitDurationMs × backoffScaling^(retry - 1)` between tries. */
export interface Retry {
  maxRetries: number;
  waitDurationMs: number;
  /** The backoff factor; 1.5 when left out (Render's default). */
  backoffScaling?: number;
}

/** The instance sizes a task can run on (CPU and memory, and their price). */
export type Plan = "starter" | "standard" | "pro" | "pro_plus" | "pro_max" | "pro_ultra";

/** One input of a task, in order: its name, the JSON Schema of its values, a default. */
export interface Parameter {
  name: string;
  /** Checked when a run starts (a 400 naming the parameter) and again by the worker. */
  schema?: JsonSchema;
  /** Used when the input leaves the parameter out; any JSON value. */
  default?: unknown;
}

/** What `task` takes: Render's options, and Conveyor's typed parameters, schedule, concurrency. */
export interface RegisterTaskOptions {
  name: string;
  retry?: Retry;
  timeoutSeconds?: number;
  plan?: Plan;
  parameters?: Parameter[];
  description?: string;
  /** A cron expression: Conveyor starts a run on it (the task must need no input). */
  schedule?: string;
  /** At most this many runs of the task at once. */
  concurrency?: number;
}

/** Passed to every task as its first argument. */
export interface TaskContext {
  /** Run another task on its own instance and wait for its result. */
  run<TArgs extends unknown[], TResult>(
    task: TaskDefinition<TArgs, TResult>,
    ...args: TArgs
  ): Promise<TResult>;
  /** The ids of this run, its root and its parent ("" for a root). */
  readonly metadata: TaskMetadata;
}

export interface TaskMetadata {
  taskRunId: string;
  rootTaskRunId: string;
  parentTaskRunId: string;
  attempt: number;
}

export type TaskFunction<TArgs extends unknown[] = unknown[], TResult = unknown> = (
  ctx: TaskContext,
  ...args: TArgs
) => TResult | Promise<TResult>;

/** A registered task; pass it to `ctx.run`, or call `func` in a unit test. */
export interface TaskDefinition<TArgs extends unknown[] = unknown[], TResult = unknown> {
  readonly name: string;
  readonly func: TaskFunction<TArgs, TResult>;
  readonly options: RegisterTaskOptions;
}
