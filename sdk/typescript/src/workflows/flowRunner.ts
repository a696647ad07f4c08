/** How a worker runs one attempt of a flow: from the top, replaying what is recorded. */
import { sendError, sendResult } from "./callbacks.js";
import type { FlowDefinition } from "./flow.js";
import { FlowChannel } from "./flowChannel.js";
import { FlowContext } from "./flowContext.js";
import { FlowPaused } from "./flowErrors.js";
import { bindArguments } from "./inputs.js";
import type { TaskMetadata } from "./types.js";

/**
 * Runs the flow and sends its callback; a sleep that is not due sends none (the platform
 * ended the attempt). True after a result or a pause.
 */
export async function runFlow(
  socketPath: string,
  flow: FlowDefinition<never[], unknown>,
  payload: unknown,
  metadata: TaskMetadata,
): Promise<boolean> {
  const channel = new FlowChannel(socketPath);
  const ctx = new FlowContext(channel, {
    flowName: flow.name,
    runId: metadata.taskRunId,
    attempt: metadata.attempt,
  });
  let args: unknown[];
  try {
    args = bindArguments(flow.options, payload);
  } catch (error) {
    await sendError(socketPath, error, false); // every attempt would fail alike
    return false;
  }
  let outcome: { result: unknown } | { error: unknown };
  try {
    outcome = { result: await flow.func(ctx, ...(args as never[])) };
  } catch (error) {
    outcome = { error };
  }
  // a pause or a flow rule's refusal ends the attempt, whatever the flow made of it
  const halted = channel.halted;
  if (halted instanceof FlowPaused) return true;
  if (halted !== undefined) {
    await sendError(socketPath, halted, false); // another attempt would reach the same step
    return false;
  }
  if ("error" in outcome) {
    await sendError(socketPath, outcome.error, true);
    return false;
  }
  try {
    await sendResult(socketPath, outcome.result);
  } catch (error) {
    await sendError(socketPath, error, true); // the platform refused the result
    return false;
  }
  return true;
}
