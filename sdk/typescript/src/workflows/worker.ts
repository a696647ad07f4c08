import { randomUUID } from "node:crypto";

import { bindArguments, InvalidInputError } from "./inputs.js";
import { allTasks, findTask, registration } from "./registry.js";
import type { TaskContext, TaskDefinition, TaskMetadata } from "./types.js";
import { call } from "./uds.js";

const POLL_MS = 500;

/** A child run failed (or was canceled); `ctx.run` throws it in the parent. */
export class TaskRunError extends Error {
  override name = "TaskRunError";
}

function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64");
}

function decode(text: unknown): unknown {
  if (typeof text !== "string" || text === "") return [];
  return JSON.parse(Buffer.from(text, "base64").toString());
}

interface InputAnswer {
  task_name: string;
  input?: string;
  task_run_id?: string;
  root_task_run_id?: string;
  parent_task_run_id?: string;
  attempt?: number;
}

interface SubtaskAnswer {
  still_running: boolean;
  complete?: { output?: string };
  error?: { details?: string };
}

class WorkerContext implements TaskContext {
  constructor(
    private readonly socketPath: string,
    readonly metadata: TaskMetadata,
  ) {}

  async run<TArgs extends unknown[], TResult>(
    task: TaskDefinition<TArgs, TResult>,
    ...args: TArgs
  ): Promise<TResult> {
    const started = (await call(this.socketPath, "/run-subtask", "POST", {
      task_name: task.name,
      input: encode(args),
      idempotency_key: randomUUID(),
      created_at: new Date().toISOString(),
    })) as { task_run_id: string };
    for (;;) {
      const answer = (await call(this.socketPath, "/get-subtask-result", "POST", {
        task_run_id: started.task_run_id,
      })) as SubtaskAnswer;
      if (answer.still_running) {
        await new Promise((done) => setTimeout(done, POLL_MS));
        continue;
      }
      if (answer.error) throw new TaskRunError(`Subtask failed: ${answer.error.details ?? ""}`);
      const output = decode(answer.complete?.output);
      // results travel as [result]; a Python task's list result travels as itself
      return (Array.isArray(output) && output.length === 1 ? output[0] : output) as TResult;
    }
  }
}

/** Register mode: send the task list. */
export async function registerTasks(socketPath: string): Promise<void> {
  const tasks = allTasks().map((task) => registration(task.options));
  await call(socketPath, "/register-tasks", "POST", { tasks });
}

/** Run mode: run the one task the platform names; true when it succeeded. */
export async function runTask(socketPath: string): Promise<boolean> {
  const input = (await call(socketPath, "/input", "GET")) as InputAnswer;
  const task = findTask(input.task_name);
  const metadata: TaskMetadata = {
    taskRunId: input.task_run_id ?? "",
    rootTaskRunId: input.root_task_run_id ?? "",
    parentTaskRunId: input.parent_task_run_id ?? "",
    attempt: input.attempt ?? 0,
  };
  try {
    if (task === undefined) {
      throw new InvalidInputError(`task '${input.task_name}' is not registered by this worker`);
    }
    const args = bindArguments(task.options, decode(input.input));
    const result = await task.func(new WorkerContext(socketPath, metadata), ...(args as never[]));
    await call(socketPath, "/callback", "POST", {
      complete: { output: encode([result === undefined ? null : result]) },
    });
    return true;
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    console.error(failure.stack ?? String(failure));
    await call(socketPath, "/callback", "POST", {
      error: {
        details: `${failure.name}: ${failure.message}`,
        stack_trace: failure.stack ?? `${failure.name}: ${failure.message}`,
        retryable: !(failure instanceof InvalidInputError),
      },
    });
    return false;
  }
}
