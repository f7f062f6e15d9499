"""Jobs: one mechanism for all heavy work (a queue, worker processes, heartbeats, progress, cancel, errors)."""
