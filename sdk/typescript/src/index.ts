export {
  ClientError,
  type ClientOptions,
  Conveyor,
  Conveyor as Render,
  createWorkflowsClient,
  type RunStatus,
  type TaskRun,
  type TaskRunAttempt,
  WorkflowsClient,
} from "./client.js";
export { VERSION } from "./version.js";
