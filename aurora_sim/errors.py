"""One error type for bad input: the CLI prints its message on one line and exits non-zero."""


class AuroraError(Exception):
    """A user-facing problem (bad file, bad option, missing model). The message names the file."""
