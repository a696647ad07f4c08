/** Defining a flow: `flow(options, async (ctx, ...args) => ...)`, a task of kind "flow". */
import type { FlowContext } from "./flowContext.js";
import { addFlow } from "./registry.js";
import { scheduleStart } from "./task.js";
import type { RegisterTaskOptions } from "./types.js";

/**
 * What `flow` takes: its name, the retry policy of the whole flow, the timeout of one attempt,
 * and, as a task's, its plan, typed parameters and a description.
 */
export type FlowOptions = Pick<
  RegisterTaskOptions,
  "name" | "retry" | "timeoutSeconds" | "plan" | "parameters" | "description"
>;

export type FlowFunction<TArgs extends unknown[] = unknown[], TResult = unknown> = (
  ctx: FlowContext,
  ...args: TArgs
) => Promise<TResult>;

/** A registered flow; it runs on the platform only (start it as `workflow-slug/name`). */
export interface FlowDefinition<TArgs extends unknown[] = unknown[], TResult = unknown> {
  readonly name: string;
  readonly func: FlowFunction<TArgs, TResult>;
  readonly options: FlowOptions;
}

/**
 * Define a flow: an async function whose steps (`ctx.step`, `ctx.run`, `ctx.sleep`) are
 * recorded; each new attempt runs it from the top and replays the recorded steps.
 */
export function flow<TArgs extends unknown[], TResult>(
  options: FlowOptions | string,
  func: FlowFunction<TArgs, TResult>,
): FlowDefinition<TArgs, TResult> {
  const given = typeof options === "string" ? { name: options } : { ...options };
  if (!given.name) throw new Error("a flow needs a name");
  if (typeof func !== "function") throw new TypeError(`flow '${given.name}' needs a function`);
  const definition = Object.freeze({ name: given.name, func, options: given });
  addFlow(definition as unknown as FlowDefinition<never[], unknown>);
  scheduleStart();
  return definition;
}
