/**
 * The flow protocol on the instance socket (docs/flows.md, "The flow protocol"): each request
 * the Python SDK sends, with the same bodies.
 */
import {
  FlowDeterminismError,
  FlowLimitError,
  type FlowPaused,
  type FlowRuleError,
} from "./flowErrors.js";
import { pythonJson } from "./pythonJson.js";
import { call } from "./uds.js";

export type StepType = "inline" | "detached" | "sleep";

/** A step's record, as `/flow-step` answers it. */
export interface StepRecord {
  status: "running" | "succeeded" | "failed";
  result: unknown;
  /** Failed tries recorded so far, across the flow's attempts. */
  failures: number;
  taskRunId: string | undefined;
}

/** A sleep's `sleep_seconds` or `wake_at`. */
export type SleepFields = { sleep_seconds: number } | { wake_at: string };

export class FlowChannel {
  // from the platform's answers: how far the step log goes, and the limits on new steps
  #lastSeq: number | undefined;
  #maxSteps = 0;
  #maxPayloadChars = 0;
  /** Why this attempt ends whatever the flow does next: a pause, or a flow rule's refusal. */
  halted: FlowPaused | FlowRuleError | undefined;

  constructor(readonly socketPath: string) {}

  post(path: string, body: Record<string, unknown>): Promise<unknown> {
    return call(this.socketPath, path, "POST", body);
  }

  /**
   * Whether no step is recorded at `seq` (nor after it) and a new step there is within the
   * limits: it can then run first and be recorded with its result. The platform measures an
   * input by Python's `json.dumps` of it.
   */
  isNew(seq: number, input: unknown): boolean {
    if (this.#lastSeq === undefined || seq <= this.#lastSeq || seq > this.#maxSteps) return false;
    return pythonJson(input).length <= this.#maxPayloadChars;
  }

  async begin(
    seq: number,
    type: StepType,
    name: string,
    input: unknown,
    sleep?: SleepFields,
  ): Promise<StepRecord> {
    const answer = await this.post("/flow-step", { seq, type, name, input, ...sleep });
    if (!isObject(answer) || typeof answer.status !== "string") {
      throw new Error(`/flow-step answered without a status: ${JSON.stringify(answer)}`);
    }
    this.#raiseRefusal(answer);
    const { last_seq: last, max_steps: steps, max_payload_chars: chars } = answer;
    if (typeof last === "number" && typeof steps === "number" && typeof chars === "number") {
      this.#lastSeq = Math.max(last, this.#lastSeq ?? 0);
      this.#maxSteps = steps;
      this.#maxPayloadChars = chars;
    }
    const child = answer.task_run_id;
    return {
      status: answer.status as StepRecord["status"],
      result: answer.result,
      failures: typeof answer.failures === "number" ? answer.failures : 0,
      taskRunId: typeof child === "string" && child !== "" ? child : undefined,
    };
  }

  /** A new inline step and its result, in one request. */
  async record(
    seq: number,
    name: string,
    input: unknown,
    result: unknown,
    started: Date,
  ): Promise<void> {
    const body = { seq, type: "inline", name, input, result, started_at: started.toISOString() };
    this.#raiseRefusal(await this.post("/flow-step-record", body));
  }

  /** One failed try of a step; `final`: no retry is left in this attempt. */
  async failed(seq: number, error: string, started: Date, final: boolean): Promise<void> {
    await this.post("/flow-step-failed", { seq, error, started_at: started.toISOString(), final });
  }

  async done(seq: number, result: unknown): Promise<void> {
    this.#raiseRefusal(await this.post("/flow-step-done", { seq, result }));
  }

  /** A flow rule failed the run: raised in the flow, and kept in case the flow catches it. */
  #raiseRefusal(answer: unknown): void {
    if (!isObject(answer) || answer.status !== "refused") return;
    const details = isObject(answer.details) ? answer.details : {};
    const message = String(answer.message);
    const refusal =
      details.code === "flow_determinism_error"
        ? new FlowDeterminismError(message, details)
        : new FlowLimitError(message, details);
    this.halted ??= refusal;
    throw refusal;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
