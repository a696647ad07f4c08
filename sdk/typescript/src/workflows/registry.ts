import type { FlowDefinition } from "./flow.js";
import type { RegisterTaskOptions, TaskDefinition } from "./types.js";

const tasks = new Map<string, TaskDefinition<never[], unknown>>();
// flows share the task names of their workflow
const flows = new Map<string, FlowDefinition<never[], unknown>>();

function claim(name: string): void {
  if (tasks.has(name) || flows.has(name)) {
    throw new Error(`task '${name}' is registered twice`);
  }
}

export function addTask(definition: TaskDefinition<never[], unknown>): void {
  claim(definition.name);
  tasks.set(definition.name, definition);
}

export function addFlow(definition: FlowDefinition<never[], unknown>): void {
  claim(definition.name);
  flows.set(definition.name, definition);
}

export function findFlow(name: string): FlowDefinition<never[], unknown> | undefined {
  return flows.get(name);
}

export function findTask(name: string): TaskDefinition<never[], unknown> | undefined {
  return tasks.get(name);
}

export function allTasks(): TaskDefinition<never[], unknown>[] {
  return [...tasks.values()];
}

/** What `/register-tasks` carries: the tasks, then the flows (tasks of kind "flow"). */
export function registrations(): Record<string, unknown>[] {
  const wire = allTasks().map((task) => registration(task.options));
  for (const flow of flows.values()) wire.push({ ...registration(flow.options), kind: "flow" });
  return wire;
}

/** A task as `/register-tasks` carries it (Render's shape, with Conveyor's extra keys). */
export function registration(options: RegisterTaskOptions): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  if (options.retry) {
    wire.retry = {
      max_retries: options.retry.maxRetries,
      wait_duration_ms: options.retry.waitDurationMs,
      factor: options.retry.backoffScaling ?? 1.5,
    };
  }
  if (options.timeoutSeconds !== undefined) wire.timeout_seconds = options.timeoutSeconds;
  if (options.plan !== undefined) wire.plan = options.plan;
  if (options.schedule !== undefined) wire.schedule = options.schedule;
  if (options.concurrency !== undefined) wire.concurrency = options.concurrency;
  const task: Record<string, unknown> = { name: options.name, options: wire };
  if (options.parameters) {
    task.parameters = options.parameters.map((parameter) => {
      const item: Record<string, unknown> = {
        name: parameter.name,
        has_default: "default" in parameter,
      };
      if ("default" in parameter) item.default_value = JSON.stringify(parameter.default ?? null);
      if (parameter.schema) item.schema = parameter.schema;
      return item;
    });
  }
  if (options.description) task.description = options.description;
  return task;
}
