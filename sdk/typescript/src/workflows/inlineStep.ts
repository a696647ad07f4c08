/**
 * An inline step: run in the flow's process, each failed try recorded, retried in place per its
 * retry; its result recorded (the Python SDK's `FlowContext._inline`, request for request).
 */
import type { FlowChannel } from "./flowChannel.js";
import { StepTimeoutError } from "./flowErrors.js";
import type { Retry } from "./types.js";

// a new inline step still running after this long is announced, so that the step log shows it
// running; one that ends sooner is recorded by one request, with its result
export const ANNOUNCE_AFTER_MS = 1000;

export interface InlineStep {
  seq: number;
  name: string;
  fn: (...args: never[]) => unknown;
  args: unknown[];
  /** The arguments as JSON gives them back: the step's recorded input. */
  input: unknown;
  retry: Retry | undefined;
  timeoutSeconds: number | undefined;
}

/**
 * A new step's `/flow-step`, sent only once the step has run `ANNOUNCE_AFTER_MS` (or has failed
 * a try: failures are recorded on the step).
 */
class Announcement {
  #sent: Promise<unknown> | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly send: () => Promise<unknown>) {
    this.#timer = setTimeout(() => this.#send(), ANNOUNCE_AFTER_MS);
  }

  #send(): Promise<unknown> {
    this.#sent = this.send();
    // a refusal is raised where the step is withdrawn; the platform recorded it either way
    this.#sent.catch(() => undefined);
    return this.#sent;
  }

  /** True: nothing was sent, the step is the caller's to record. False: it was announced. */
  async withdraw(): Promise<boolean> {
    if (this.#sent !== undefined) {
      await this.#sent;
      return false;
    }
    this.discard();
    return true;
  }

  /** Announced, if it was not already. */
  async now(): Promise<void> {
    if (await this.withdraw()) await this.#send();
  }

  discard(): void {
    clearTimeout(this.#timer);
  }
}

/** The step's result: recorded, or got by running it. */
export async function inlineStep(channel: FlowChannel, step: InlineStep): Promise<unknown> {
  let announcement: Announcement | undefined;
  if (channel.isNew(step.seq, step.input)) {
    // nothing recorded here: run it first, record it with its result in one request
    announcement = new Announcement(() =>
      channel.begin(step.seq, "inline", step.name, step.input),
    );
  } else {
    const record = await channel.begin(step.seq, "inline", step.name, step.input);
    if (record.status === "succeeded") return record.result;
  }
  try {
    return await tries(channel, step, announcement);
  } finally {
    announcement?.discard();
  }
}

async function tries(
  channel: FlowChannel,
  step: InlineStep,
  announced: Announcement | undefined,
): Promise<unknown> {
  let announcement = announced;
  for (let retries = 0; ; retries++) {
    const started = new Date();
    let value: unknown;
    try {
      value = asJson(await once(step));
    } catch (error) {
      if (announcement !== undefined) {
        await announcement.now();
        announcement = undefined;
      }
      const final = retries >= (step.retry?.maxRetries ?? 0);
      await channel.failed(step.seq, describe(error), started, final);
      if (final) throw error;
      await new Promise((done) => setTimeout(done, delayMs(step.retry, retries + 1)));
      continue;
    }
    if (announcement !== undefined && (await announcement.withdraw())) {
      await channel.record(step.seq, step.name, step.input, value, started);
    } else {
      await channel.done(step.seq, value);
    }
    return value;
  }
}

/** One try: the function called, raced against the step's timeout. */
async function once(step: InlineStep): Promise<unknown> {
  const running = (async () => step.fn(...(step.args as never[])))();
  const limit = step.timeoutSeconds;
  if (limit === undefined) return running;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    const expire = (): void => reject(new StepTimeoutError(step.name, step.seq, limit));
    timer = setTimeout(expire, limit * 1000);
  });
  try {
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A value as JSON gives it back: what a replay of the step returns. */
export function asJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text === undefined ? null : JSON.parse(text);
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : `Error: ${String(error)}`;
}

/** The wait before retry `number` (1 for the first), as a task's retries wait. */
function delayMs(retry: Retry | undefined, number: number): number {
  if (retry === undefined) return 0;
  return retry.waitDurationMs * (retry.backoffScaling ?? 1.5) ** (number - 1);
}
