import { checkValue } from "./schema.js";
import type { RegisterTaskOptions } from "./types.js";

/** The input cannot reach the task; another attempt would fail the same way. */
export class InvalidInputError extends Error {
  override name = "InvalidInputError";
}

/**
 * The task's arguments from a run's input: a JSON array, by position. With declared parameters,
 * defaults fill what is left out and each value is checked against its parameter's schema.
 */
export function bindArguments(options: RegisterTaskOptions, input: unknown): unknown[] {
  const where = `task '${options.name}' cannot take this input`;
  if (!Array.isArray(input)) {
    throw new InvalidInputError(
      `${where}: a TypeScript task takes its arguments by position (a JSON array)`,
    );
  }
  const parameters = options.parameters;
  if (parameters === undefined) return input;
  if (input.length > parameters.length) {
    throw new InvalidInputError(
      `${where}: takes at most ${parameters.length} inputs, got ${input.length}`,
    );
  }
  return parameters.map((parameter, index) => {
    if (index >= input.length) {
      if (!("default" in parameter)) {
        throw new InvalidInputError(`${where}: missing required input '${parameter.name}'`);
      }
      return structuredClone(parameter.default);
    }
    const value = input[index];
    const problem = parameter.schema ? checkValue(parameter.schema, value, parameter.name) : null;
    if (problem) throw new InvalidInputError(`${where}: ${problem}`);
    return value;
  });
}
