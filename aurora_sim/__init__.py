"""aurora-sim: online speculative-decoding training, replayed in deterministic virtual time."""

__version__ = "0.1.0"
