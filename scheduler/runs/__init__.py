"""The run lifecycle: every state change of runs and attempts, their reads, and their logs.

- `transitions` — every compare-and-set on runs and attempts (the only writer of their state);
- `admission` — who gets free slots (the reads of an admission pass);
- `writes` — write transactions and what happens when they commit;
- `reads`, `usage`, `logs` — queries and waits; `service` — what clients may ask;
- `rows` — the tables and their rows as domain values.
"""
