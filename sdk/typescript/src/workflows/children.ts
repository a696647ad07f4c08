/** Child runs on the instance socket: their input and results as base64 JSON, awaiting one. */
import { call } from "./uds.js";

/** A child run failed (or was canceled); `ctx.run` throws it in the parent. */
export class TaskRunError extends Error {
  override name = "TaskRunError";
}

export function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64");
}

export function decodeJson(text: unknown): unknown {
  if (typeof text !== "string" || text === "") return [];
  return JSON.parse(Buffer.from(text, "base64").toString());
}

interface SubtaskAnswer {
  still_running: boolean;
  complete?: { output?: string };
  error?: { details?: string };
}

export interface AwaitOptions {
  /** Wait after each `still_running: true`. */
  pollMs: number;
  /** Ask the platform to hold the request until the child ends (a client without threads). */
  hold: boolean;
}

/** The child's result once it ends; its failure thrown as `TaskRunError`. */
export async function awaitChild(
  socketPath: string,
  taskRunId: string,
  options: AwaitOptions,
): Promise<unknown> {
  const body: Record<string, unknown> = { task_run_id: taskRunId };
  if (options.hold) body.hold = true;
  for (;;) {
    const answer = (await call(socketPath, "/get-subtask-result", "POST", body)) as SubtaskAnswer;
    if (typeof answer?.still_running !== "boolean") {
      const shown = JSON.stringify(answer);
      throw new Error(`/get-subtask-result answered without still_running: ${shown}`);
    }
    if (answer.still_running) {
      await new Promise((done) => setTimeout(done, options.pollMs));
      continue;
    }
    if (answer.error) throw new TaskRunError(`Subtask failed: ${answer.error.details ?? ""}`);
    const output = decodeJson(answer.complete?.output);
    // results travel as [result]; a Python task's list result travels as itself
    return Array.isArray(output) && output.length === 1 ? output[0] : output;
  }
}
