import { addTask } from "./registry.js";
import type { RegisterTaskOptions, TaskDefinition, TaskFunction } from "./types.js";
import { registerTasks, runTask } from "./worker.js";

let startScheduled = false;

function shouldStart(): boolean {
  return Boolean(process.env.RENDER_SDK_SOCKET_PATH) && process.env.RENDER_SDK_AUTO_START !== "false";
}

/**
 * Start the worker: register the tasks (`RENDER_SDK_MODE=register`) or run the one the platform
 * names, then exit. Called by itself after the module that defines tasks has loaded, when
 * Conveyor (or Render) started this process; set RENDER_SDK_AUTO_START=false to call it yourself.
 */
export async function startTaskServer(): Promise<never> {
  const socketPath = process.env.RENDER_SDK_SOCKET_PATH;
  if (!socketPath) throw new Error("RENDER_SDK_SOCKET_PATH is not set: nothing to serve");
  const mode = process.env.RENDER_SDK_MODE ?? "run";
  try {
    if (mode === "register") {
      await registerTasks(socketPath);
      process.exit(0);
    }
    if (mode !== "run") throw new Error(`unknown RENDER_SDK_MODE ${JSON.stringify(mode)}`);
    process.exit((await runTask(socketPath)) ? 0 : 1);
  } catch (error) {
    // the platform could not be reached or refused the request: no task ran
    console.error("conveyor worker:", error);
    process.exit(1);
  }
}

/** Define a task: Render's `task(options, func)`, with Conveyor's typed `parameters`. */
export function task<TArgs extends unknown[], TResult>(
  options: RegisterTaskOptions,
  func: TaskFunction<TArgs, TResult>,
): TaskDefinition<TArgs, TResult> {
  if (!options.name) throw new Error("a task needs a name");
  const definition = Object.freeze({ name: options.name, func, options: { ...options } });
  addTask(definition as unknown as TaskDefinition<never[], unknown>);
  scheduleStart();
  return definition;
}

/** Start the worker once the module that defines tasks and flows has loaded. */
export function scheduleStart(): void {
  if (!startScheduled && shouldStart()) {
    startScheduled = true;
    setImmediate(() => void startTaskServer());
  }
}
