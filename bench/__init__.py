"""`make bench`: Conveyor beside Celery and RQ on this machine; see docs/benchmarks.md."""
