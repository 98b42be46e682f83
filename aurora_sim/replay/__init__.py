"""Replay: a trace runs through the real speculative engine in deterministic virtual time while
a draft learns online and a controller hot-swaps it; everything lands in an event log.

Modules: rng (per-subsystem seeded streams), events (the virtual-time queue), config
(ReplayConfig), workload (trace -> requests), eventlog (Parquet tables), trainer (the learner on
its own virtual timeline), loop (the replay itself), summary (end-of-run numbers), compare (the
paper's four arms), cli (`aurora replay`).
"""
