"""Flows: the step log of flow runs, their durable sleep, and the worker's flow protocol.

A flow run is a task run of a task whose kind is ``flow``: it is admitted, holds a slot, is
cancelled and retried by the run lifecycle (`scheduler.runs`). This package adds what a flow has
beyond a task: its steps by ``seq`` (`steps`), the pause of an attempt that sleeps (`pause`) and
the socket routes its worker calls (`protocol`).
"""
