"""Executors: where an attempt's instance runs (local process, container, Nomad job)."""
