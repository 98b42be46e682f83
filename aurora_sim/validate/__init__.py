"""The simulator checked against a real clock (`aurora validate`).

clock.py     the replay on the cost model's virtual clock and on this machine's own
grid.py      the shapes a trace meets, as a calibration grid
metrics.py   throughput, latency, TTFT and round-time distributions; relative errors; where
             a makespan error comes from
store.py     the files a validation writes (and the report reads)
run.py       arm by arm: predicted, measured, compared
cli.py       the command
"""
