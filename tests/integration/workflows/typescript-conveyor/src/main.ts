// A workflow on Conveyor's TypeScript SDK: Render's task API plus typed parameters.
import { task, type TaskContext } from "conveyor-sdk/workflows";

const integer = { type: "integer" };

export const square = task(
  { name: "square", parameters: [{ name: "a", schema: integer }] },
  (_ctx: TaskContext, a: number): number => a * a,
);

export const addSquares = task(
  {
    name: "add_squares",
    parameters: [
      { name: "a", schema: integer },
      { name: "b", schema: integer, default: 0 },
    ],
  },
  async (ctx: TaskContext, a: number, b: number): Promise<number> => {
    const [x, y] = await Promise.all([ctx.run(square, a), ctx.run(square, b)]);
    return x + y;
  },
);

export const fails = task({ name: "fails" }, (_ctx: TaskContext, why: string): never => {
  throw new TypeError(`failed: ${why}`);
});
