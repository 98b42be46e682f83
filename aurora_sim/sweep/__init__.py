"""`aurora sweep`: many deterministic replays from one spec, in parallel on Ray (aurora_sim.sweep.cli)."""
