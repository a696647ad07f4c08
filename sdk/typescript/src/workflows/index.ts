export { type ClientOptions, createWorkflowsClient, WorkflowsClient } from "../client.js";
export { bindArguments, InvalidInputError } from "./inputs.js";
export { checkValue, type JsonSchema } from "./schema.js";
export { startTaskServer, task } from "./task.js";
export { flow, type FlowDefinition, type FlowFunction, type FlowOptions } from "./flow.js";
export { FlowContext, type StepOptions } from "./flowContext.js";
export {
  type FlowErrorDetails,
  FlowDeterminismError,
  FlowLimitError,
  FlowRuleError,
  StepTimeoutError,
} from "./flowErrors.js";
export type {
  Parameter,
  Plan,
  RegisterTaskOptions,
  Retry,
  TaskContext,
  TaskDefinition,
  TaskFunction,
  TaskMetadata,
} from "./types.js";
export { TaskRunError } from "./children.js";
