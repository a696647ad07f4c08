/** `FlowContext`: a flow's steps, each recorded by the platform under its `seq`. */
import { awaitChild, encodeJson, TaskRunError } from "./children.js";
import { type FlowChannel, isObject, type SleepFields } from "./flowChannel.js";
import { FlowPaused } from "./flowErrors.js";
import { asJson, inlineStep } from "./inlineStep.js";
import type { Retry, TaskDefinition } from "./types.js";

/** Wait between polls of a detached step's run, once the platform stopped holding the request. */
const POLL_MS = 1000;

/** How an inline step runs: `ctx.step(options, fn, ...args)`. */
export interface StepOptions {
  /** Tries again in this attempt after a failure; none by default. */
  retry?: Retry;
  /** Seconds one try may take; a try past it fails with `StepTimeoutError`. */
  timeoutSeconds?: number;
  /** The step's name in the log (checked on replay); the function's name by default. */
  name?: string;
}

/** The running flow: its name, its run's id, the attempt number (0 for the first). */
export interface FlowInfo {
  flowName: string;
  runId: string;
  attempt: number;
}

type StepFunction = (...args: never[]) => unknown;

/**
 * Handed to a flow as its first argument: its steps run through it.
 *
 * Every attempt runs the flow from the top; a step already recorded returns its result without
 * running. Steps must be reached in the same order with the same names and inputs in every
 * attempt (else `FlowDeterminismError`). A step's `seq` is taken when it is called, so steps
 * started together (`Promise.all`) are numbered in the order they were called.
 */
export class FlowContext {
  readonly flowName: string;
  readonly runId: string;
  readonly attempt: number;
  readonly #channel: FlowChannel;
  #seq = 0;
  // detached steps called whose run is not yet started: a sleep waits for them, so that a step
  // started beside a sleep (Promise.all) has its run before the attempt ends
  readonly #starting = new Set<Promise<void>>();

  /** Built by the worker, not by users. */
  constructor(channel: FlowChannel, info: FlowInfo) {
    this.#channel = channel;
    this.flowName = info.flowName;
    this.runId = info.runId;
    this.attempt = info.attempt;
  }

  /**
   * An inline step: runs `fn(...args)` in this process, once; its result is recorded. The form
   * with options retries it in place, limits a try's time, or names it.
   *
   * @returns Its result as JSON gives it back (as a replay returns it).
   */
  step<TArgs extends unknown[], TResult>(
    fn: (...args: TArgs) => TResult,
    ...args: TArgs
  ): Promise<Awaited<TResult>>;
  step<TArgs extends unknown[], TResult>(
    options: StepOptions,
    fn: (...args: TArgs) => TResult,
    ...args: TArgs
  ): Promise<Awaited<TResult>>;
  step(first: StepOptions | StepFunction, ...rest: unknown[]): Promise<unknown> {
    const [options, given, args]: [StepOptions, unknown, unknown[]] =
      typeof first === "function" ? [{}, first, rest] : [first, rest[0], rest.slice(1)];
    if (typeof given !== "function") {
      return Promise.reject(new TypeError("ctx.step takes a function to run"));
    }
    const fn = given as StepFunction;
    const { retry, timeoutSeconds, name = fn.name || "anonymous" } = options;
    return this.#next((seq) => {
      const input = asJson(args);
      return inlineStep(this.#channel, { seq, name, fn, args, input, retry, timeoutSeconds });
    });
  }

  /**
   * A detached step: a task run of its own (own instance, own retries), a child of the flow's
   * run, awaited without holding a slot. A replay finds the same run.
   *
   * @throws TaskRunError The task run failed.
   */
  run<TArgs extends unknown[], TResult>(
    task: TaskDefinition<TArgs, TResult>,
    ...args: TArgs
  ): Promise<Awaited<TResult>>;
  run(task: string, ...args: unknown[]): Promise<unknown>;
  run(task: { readonly name: string } | string, ...args: unknown[]): Promise<unknown> {
    const name = typeof task === "string" ? task : task.name;
    return this.#next(async (seq) => {
      let started = (): void => undefined;
      const starting = new Promise<void>((resolve) => {
        started = resolve;
      });
      this.#starting.add(starting);
      try {
        return await this.#detached(seq, name, asJson(args), started);
      } finally {
        started();
        this.#starting.delete(starting);
      }
    });
  }

  /**
   * A durable sleep: the attempt ends and the run shows `paused`; a new attempt resumes here
   * once `seconds` have passed since the sleep was first reached.
   */
  sleep(seconds: number): Promise<void> {
    if (!Number.isFinite(seconds)) {
      return Promise.reject(new TypeError(`ctx.sleep takes a number of seconds, got ${seconds}`));
    }
    return this.#next((seq) => this.#sleep(seq, [seconds], { sleep_seconds: seconds }));
  }

  /** A durable sleep until `when`, as `sleep`; a time already past does not sleep. */
  sleepUntil(when: Date): Promise<void> {
    if (!(when instanceof Date) || Number.isNaN(when.getTime())) {
      return Promise.reject(new TypeError("ctx.sleepUntil takes a valid Date"));
    }
    const wakeAt = when.toISOString();
    return this.#next((seq) => this.#sleep(seq, [wakeAt], { wake_at: wakeAt }));
  }

  // the seq is taken when the step is called, not when it is awaited
  #next<T>(step: (seq: number) => Promise<T>): Promise<T> {
    const halted = this.#channel.halted;
    if (halted !== undefined) return Promise.reject(halted); // the attempt is over
    this.#seq += 1;
    const seq = this.#seq;
    return (async () => step(seq))();
  }

  async #detached(
    seq: number,
    name: string,
    input: unknown,
    started: () => void,
  ): Promise<unknown> {
    const record = await this.#channel.begin(seq, "detached", name, input);
    if (record.status === "succeeded") return record.result;
    // a child that failed is not awaited again: a new try of the step starts another
    let runId = record.status === "running" ? record.taskRunId : undefined;
    if (runId === undefined) {
      const answer = await this.#channel.post("/run-subtask", {
        task_name: name,
        input: encodeJson(input),
        // one child per try of the step, whichever attempt asks: a replay finds it
        idempotency_key: `flow-step-${seq}-${record.failures}`,
        created_at: new Date().toISOString(),
      });
      const child = isObject(answer) ? answer.task_run_id : undefined;
      if (typeof child !== "string" || child === "") {
        throw new Error(`/run-subtask answered without a task_run_id: ${JSON.stringify(answer)}`);
      }
      runId = child;
      await this.#channel.post("/flow-step-child", { seq, task_run_id: runId });
    }
    started();
    let result: unknown;
    try {
      result = await awaitChild(this.#channel.socketPath, runId, { pollMs: POLL_MS, hold: true });
    } catch (error) {
      if (error instanceof TaskRunError) {
        await this.#channel.failed(seq, error.message, new Date(), true);
      }
      throw error;
    }
    await this.#channel.done(seq, result);
    return result;
  }

  async #sleep(seq: number, input: unknown[], fields: SleepFields): Promise<void> {
    const record = await this.#channel.begin(seq, "sleep", "sleep", input, fields);
    if (record.status === "succeeded") return;
    await Promise.all(this.#starting);
    await this.#channel.post("/flow-pause", { seq });
    const paused = new FlowPaused(seq);
    this.#channel.halted ??= paused;
    throw paused;
  }
}
