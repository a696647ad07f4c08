// A flow on Conveyor's TypeScript SDK: an inline step, a detached step (a task of its own), a
// durable sleep, and an inline step that fails twice before it succeeds.
import { type FlowContext, flow, type TaskContext, task } from "conveyor-sdk/workflows";

export const addOne = task(
  { name: "add_one", parameters: [{ name: "n", schema: { type: "integer" } }] },
  (_ctx: TaskContext, n: number): number => n + 1,
);

function double(n: number): number {
  return n * 2;
}

// its tries in this process: the step retries in place, so each attempt starts again at 0
let flakyTries = 0;

function flaky(n: number): number {
  flakyTries += 1;
  if (flakyTries <= 2) throw new RangeError(`flaky failure ${n}`);
  return n + 100;
}

export const everyStep = flow(
  { name: "every_step", parameters: [{ name: "n", schema: { type: "integer" } }] },
  async (ctx: FlowContext, n: number) => {
    const a = await ctx.step(double, n);
    const b = await ctx.run(addOne, a);
    await ctx.sleep(1);
    const c = await ctx.step({ retry: { maxRetries: 2, waitDurationMs: 10 } }, flaky, b);
    return { a, b, c, attempt: ctx.attempt };
  },
);
