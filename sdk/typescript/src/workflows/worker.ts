import { randomUUID } from "node:crypto";

import { sendError, sendResult } from "./callbacks.js";
import { awaitChild, decodeJson, encodeJson } from "./children.js";
import { runFlow } from "./flowRunner.js";
import { bindArguments, InvalidInputError } from "./inputs.js";
import { findFlow, findTask, registrations } from "./registry.js";
import type { TaskContext, TaskDefinition, TaskMetadata } from "./types.js";
import { call } from "./uds.js";

export { TaskRunError } from "./children.js";

const POLL_MS = 500;

interface InputAnswer {
  task_name: string;
  input?: string;
  task_run_id?: string;
  root_task_run_id?: string;
  parent_task_run_id?: string;
  attempt?: number;
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
      input: encodeJson(args),
      idempotency_key: randomUUID(),
      created_at: new Date().toISOString(),
    })) as { task_run_id: string };
    const result = await awaitChild(this.socketPath, started.task_run_id, {
      pollMs: POLL_MS,
      hold: false,
    });
    return result as TResult;
  }
}

/** Register mode: send the task list (flows are tasks of kind "flow"). */
export async function registerTasks(socketPath: string): Promise<void> {
  await call(socketPath, "/register-tasks", "POST", { tasks: registrations() });
}

/** Run mode: run the one task (or flow) the platform names; true when it succeeded or paused. */
export async function runTask(socketPath: string): Promise<boolean> {
  const input = (await call(socketPath, "/input", "GET")) as InputAnswer;
  const metadata: TaskMetadata = {
    taskRunId: input.task_run_id ?? "",
    rootTaskRunId: input.root_task_run_id ?? "",
    parentTaskRunId: input.parent_task_run_id ?? "",
    attempt: input.attempt ?? 0,
  };
  const flow = findFlow(input.task_name);
  if (flow !== undefined) return runFlow(socketPath, flow, decodeJson(input.input), metadata);
  const task = findTask(input.task_name);
  try {
    if (task === undefined) {
      throw new InvalidInputError(`task '${input.task_name}' is not registered by this worker`);
    }
    const args = bindArguments(task.options, decodeJson(input.input));
    const result = await task.func(new WorkerContext(socketPath, metadata), ...(args as never[]));
    await sendResult(socketPath, result);
    return true;
  } catch (error) {
    await sendError(socketPath, error, !(error instanceof InvalidInputError));
    return false;
  }
}
