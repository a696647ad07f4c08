// A workflow written with Render's official TypeScript SDK, run by Conveyor unmodified.
import { existsSync, writeFileSync } from "node:fs";
import { task, type TaskContext } from "@renderinc/sdk/workflows";

export const square = task({ name: "square" }, (_ctx: TaskContext, a: number): number => a * a);

export const sumSquares = task(
  { name: "sum_squares", timeoutSeconds: 60 },
  async (ctx: TaskContext, a: number, b: number): Promise<number> => {
    const [x, y] = await Promise.all([ctx.run(square, a), ctx.run(square, b)]);
    return x + y;
  },
);

export const fails = task({ name: "fails" }, (_ctx: TaskContext, message: string): string => {
  throw new Error(`boom: ${message}`);
});

// Fails until its `times`-th attempt; no backoffScaling: Render's default factor, 1.5, applies.
export const flaky = task(
  { name: "flaky", retry: { maxRetries: 3, waitDurationMs: 1000 } },
  (_ctx: TaskContext, marker: string, times: number): number => {
    let seen = 0;
    while (existsSync(`${marker}.${seen}`)) seen += 1;
    writeFileSync(`${marker}.${seen}`, String(Date.now()));
    if (seen + 1 < times) throw new Error(`attempt ${seen} fails`);
    return seen;
  },
);
