"""REST v1: one module per resource, plus the shared request/response plumbing."""
