// Tasks are functions registered with `task`; each call of `ctx.run` is a run of its own.
import { task, type TaskContext } from "@renderinc/sdk/workflows";

const GREETING = "hello";

export const square = task({ name: "square" }, (_ctx: TaskContext, a: number): number => a * a);

export const addSquares = task(
  { name: "add_squares", timeoutSeconds: 60, retry: { maxRetries: 2, waitDurationMs: 500 } },
  async (ctx: TaskContext, a: number, b: number): Promise<number> => {
    const [x, y] = await Promise.all([ctx.run(square, a), ctx.run(square, b)]);
    return x + y;
  },
);

export const greet = task({ name: "greet" }, (_ctx: TaskContext, name: string): string => {
  return `${GREETING}, ${name}!`;
});
