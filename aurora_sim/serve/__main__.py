"""`python -m aurora_sim.serve --port N ...`: the server without the rest of the CLI."""

import typer

from aurora_sim.serve.cli import serve_command

if __name__ == "__main__":
    typer.run(serve_command)
