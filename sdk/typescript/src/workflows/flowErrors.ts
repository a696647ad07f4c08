/**
 * The errors of flows. `FlowRuleError`'s two kinds fail the run without retry (another attempt
 * would reach the same step); the flow must not catch them.
 *
 *     Error
 *     ├── FlowRuleError             a flow rule failed the run; `details` from the platform
 *     │   ├── FlowDeterminismError  the step reached is not the one recorded at its seq
 *     │   └── FlowLimitError        past a limit of the step log (steps, a payload, the history)
 *     └── StepTimeoutError          one try of an inline step took longer than its timeoutSeconds
 */

/** The platform's account of a refused step: `{code, message, seq, ...}`. */
export type FlowErrorDetails = Readonly<Record<string, unknown>>;

export class FlowRuleError extends Error {
  override name = "FlowRuleError";

  constructor(
    message: string,
    readonly details: FlowErrorDetails,
  ) {
    super(message);
  }
}

/** `details`: `{code: "flow_determinism_error", kind, seq, expected, actual}`. */
export class FlowDeterminismError extends FlowRuleError {
  override name = "FlowDeterminismError";
}

/** `details.code`: flow_step_limit_exceeded, flow_payload_too_large or flow_history_too_large. */
export class FlowLimitError extends FlowRuleError {
  override name = "FlowLimitError";
}

export class StepTimeoutError extends Error {
  override name = "StepTimeoutError";

  constructor(
    readonly stepName: string,
    readonly seq: number,
    readonly timeoutSeconds: number,
  ) {
    super(`step ${seq} (${stepName}) took longer than ${timeoutSeconds} s`);
  }
}

/**
 * The flow reached a sleep that is not due: the platform ended this attempt, and the worker
 * exits without a callback. Not exported: a flow that catches it is still paused.
 */
export class FlowPaused extends Error {
  override name = "FlowPaused";

  constructor(readonly seq: number) {
    super(`the flow sleeps at step ${seq}`);
  }
}
