/** How a run's attempt ends: `/callback` with its result, or with its error and stack. */
import { encodeJson } from "./children.js";
import { call } from "./uds.js";

export async function sendResult(socketPath: string, result: unknown): Promise<void> {
  await call(socketPath, "/callback", "POST", {
    complete: { output: encodeJson([result === undefined ? null : result]) },
  });
}

/** The error as `{details, stack_trace, retryable}`; `retryable: false` fails the run now. */
export async function sendError(
  socketPath: string,
  error: unknown,
  retryable: boolean,
): Promise<void> {
  const failure = error instanceof Error ? error : new Error(String(error));
  console.error(failure.stack ?? String(failure));
  await call(socketPath, "/callback", "POST", {
    error: {
      details: `${failure.name}: ${failure.message}`,
      stack_trace: failure.stack ?? `${failure.name}: ${failure.message}`,
      retryable,
    },
  });
}
