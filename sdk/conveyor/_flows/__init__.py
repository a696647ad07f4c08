"""Flows: durable functions of checkpointed steps (`FlowContext`), and how a worker runs one."""
