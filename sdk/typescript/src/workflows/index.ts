export { bindArguments, InvalidInputError } from "./inputs.js";
export { checkValue, type JsonSchema } from "./schema.js";
export { startTaskServer, task } from "./task.js";
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
export { TaskRunError } from "./worker.js";
export { type ClientOptions, createWorkflowsClient, WorkflowsClient } from "../client.js";
