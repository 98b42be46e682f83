"""Every shell block of README.md runs as written on a fresh clone.

The README's ```bash blocks are split into commands (comments, `&&`, `;`, `|`, `&` and line
continuations handled as a shell would), and each command is checked without its cost:

- `aurora ...` / `python3 -m aurora_sim ...`: parsed by the real CLI (click's own parser, the
  one `aurora` runs: unknown subcommands, misspelled or missing options and bad values fail);
  the side-effect-free ones (`--dry-run`, `list`, `--help`) are also run for real, from the repo
  root, as a subprocess;
- `bash FILE` / `python3 FILE`: FILE exists (and `bash -n` / compile() accept it);
- every path into the repository (a top-level directory of the repo, or an input file such as
  `examples/x.yaml`) exists; outputs (`runs/`, `out/`) and placeholders (`SPEC.yaml`) are not checked;
- each block as a whole passes `bash -n`.

A command of any other program fails the test until this file is taught about it, and
`test_checker_catches_mistakes` proves the checks can fail.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import typer

try:  # typer >= 0.2x carries its own copy of click; older ones use click itself
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # pragma: no cover - depends on the installed typer
    _TyperClickException = click.ClickException
USAGE_ERRORS = (click.ClickException, _TyperClickException)
EXITS = (click.exceptions.Exit, typer.Exit)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OPERATORS = {"&&", "||", ";", "|", "&", ";;"}
REDIRECTS = {">", ">>", "<", "2>", "&>", "2>&1"}
OUTPUT_DIRS = {"runs", "out"}  # gitignored: made by the commands themselves
INPUT_SUFFIXES = {".yaml", ".yml", ".json", ".toml", ".sh", ".py", ".md", ".jsonl", ".txt", ".csv"}
BUILTINS = {"kill", "wait", "cd", "export", "sleep", "echo", "cat", "ls", "mkdir", "fg", "jobs"}
SAFE_TO_RUN = 10.0  # seconds a "run for real" command may take


# ---------------------------------------------------------------------------- extraction


def shell_blocks(markdown: str) -> list[tuple[int, str]]:
    """(first line number, text) of each ```bash / ```sh / ```shell / ```console block."""
    blocks, inside, start, buf = [], False, 0, []
    for no, line in enumerate(markdown.splitlines(), 1):
        fence = re.match(r"^\s*```\s*(\S*)", line)
        if fence and not inside:
            inside, lang, start, buf = True, fence.group(1).lower(), no + 1, []
        elif fence and inside:
            if lang in ("bash", "sh", "shell", "console"):
                blocks.append((start, "\n".join(buf)))
            inside = False
        elif inside:
            buf.append(line)
    return blocks


def commands(block: str, first_line: int) -> list[tuple[int, list[str]]]:
    """(README line, argv) per simple command of a block."""
    out = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        no, text = first_line + i, lines[i]
        while text.rstrip().endswith("\\") and i + 1 < len(lines):  # continuation lines
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i]
        i += 1
        text = re.sub(r"^\s*\$ ", "", text)  # a console prompt
        lex = shlex.shlex(text, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        argv: list[str] = []
        skip_next = False
        try:
            tokens = list(lex)
        except ValueError as exc:  # e.g. an unclosed quote
            out.append((no, ["<unsplittable>", str(exc)]))
            continue
        for tok in tokens:
            if skip_next:
                skip_next = False
            elif tok in OPERATORS:
                if argv:
                    out.append((no, argv))
                argv = []
            elif tok in REDIRECTS:
                skip_next = True
            else:
                argv.append(tok)
        if argv:
            out.append((no, argv))
    for k, (no, argv) in enumerate(out):  # FOO=1 cmd ...
        while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            argv = argv[1:]
        out[k] = (no, argv)
    return [(no, argv) for no, argv in out if argv]


# ---------------------------------------------------------------------------- checks


def parse_cli(argv: list[str]) -> list[str]:
    """Parse `aurora ARGV` with the real CLI without running it; returns the subcommand path.
    Raises one of USAGE_ERRORS (unknown command or option, missing argument, bad value)."""
    from aurora_sim.cli import app

    cmd = typer.main.get_command(app)
    ctx, name, path = None, "aurora", []
    args = list(argv)
    while True:
        ctx = cmd.make_context(name, args, parent=ctx)
        if not hasattr(cmd, "resolve_command"):  # a command, not a group
            return path
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            raise click.UsageError(f"`{' '.join(['aurora', *path])}` needs a subcommand")
        name, cmd, args = cmd.resolve_command(ctx, rest)
        path.append(name)


def aurora_args(argv: list[str]) -> list[str] | None:
    """The CLI arguments if argv runs the aurora CLI, else None."""
    if argv[0] == "aurora":
        return argv[1:]
    if re.fullmatch(r"python(3(\.\d+)?)?", argv[0]) and argv[1:3] == ["-m", "aurora_sim"]:
        return argv[3:]
    return None


def repo_path_problem(token: str) -> str | None:
    """A token naming a path inside the repository must exist (outputs and placeholders are skipped)."""
    if token.startswith("-") or "://" in token or any(c in token for c in "*?[]{}$"):
        token = token.split("=", 1)[1] if token.startswith("--") and "=" in token else ""
        if not token or "://" in token or any(c in token for c in "*?[]{}$"):
            return None
    p = Path(token)
    if p.is_absolute() or not p.parts or p.parts[0] in OUTPUT_DIRS or p.parts[0].startswith("~"):
        return None
    top = ROOT / p.parts[0]
    in_repo = len(p.parts) > 1 and top.is_dir() and not p.parts[0].startswith(".")
    looks_input = len(p.parts) > 1 and p.suffix in INPUT_SUFFIXES
    if (in_repo or looks_input) and not (ROOT / p).exists():
        return f"{token}: no such file or directory in the repository"
    return None


def check_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """(problems, CLI args when it is an aurora command that is safe to run for real)."""
    problems = [m for m in (repo_path_problem(t) for t in argv[1:]) if m]
    args = aurora_args(argv)
    if args is not None:
        try:
            path = parse_cli(args)
        except EXITS:
            return problems, None  # --help
        except USAGE_ERRORS as exc:
            return problems + [f"does not parse: {exc.format_message()}"], None
        cheap = "--dry-run" in args or "--help" in args or (path and path[-1] == "list")
        return problems, args if cheap and not problems else None
    prog = argv[0]
    if prog == "<unsplittable>":
        return [f"cannot be split into words: {argv[1]}"], None
    if prog in ("bash", "sh"):
        script = next((a for a in argv[1:] if not a.startswith("-")), None)
        if script is None or not (ROOT / script).is_file():
            problems = problems or [f"{script}: script not found"]
        else:
            res = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
            if res.returncode:
                problems.append(f"{script}: bash -n: {res.stderr.strip()}")
    elif re.fullmatch(r"python(3(\.\d+)?)?", prog):
        script = argv[1] if len(argv) > 1 else None
        if script is None or script.startswith("-"):
            problems.append(f"{' '.join(argv)}: only `python3 FILE` and `python3 -m aurora_sim` are checked")
        elif not (ROOT / script).is_file():
            problems = problems or [f"{script}: script not found"]
        else:
            try:
                compile((ROOT / script).read_text(), script, "exec")
            except SyntaxError as exc:
                problems.append(f"{script}: {exc}")
    elif prog not in BUILTINS:
        problems.append(f"{prog}: a program this test does not know (teach tests/test_readme_commands.py)")
    return problems, None


def check_markdown(text: str) -> tuple[list[str], list[tuple[int, list[str]]], int]:
    """(problems as 'README:LINE: command: problem', aurora commands to run for real, commands seen)."""
    problems, runnable, seen = [], [], 0
    for start, block in shell_blocks(text):
        res = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        if res.returncode:
            problems.append(f"README.md:{start}: block does not parse as bash: {res.stderr.strip()}")
        for no, argv in commands(block, start):
            seen += 1
            found, run_args = check_command(argv)
            problems += [f"README.md:{no}: `{shlex.join(argv)}`: {p}" for p in found]
            if run_args is not None:
                runnable.append((no, run_args))
    return problems, runnable, seen


# ---------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def readme():
    return check_markdown(README.read_text(encoding="utf-8"))


def test_every_readme_command_parses_and_its_paths_exist(readme):
    problems, _, seen = readme
    assert seen >= 15, f"only {seen} commands found in README.md's shell blocks: is the extraction broken?"
    assert not problems, "README.md commands that would not run as written:\n" + "\n".join(problems)


def test_cheap_readme_commands_run(readme):
    """The side-effect-free ones, for real, from the repository root, as `aurora` would run them."""
    _, runnable, _ = readme
    assert runnable, "no README command is cheap enough to run (expected at least the sweep's --dry-run)"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    for no, args in runnable:
        t0 = time.monotonic()
        res = subprocess.run(
            [sys.executable, "-m", "aurora_sim", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        took = time.monotonic() - t0
        assert res.returncode == 0, f"README.md:{no}: `aurora {shlex.join(args)}` failed:\n{res.stdout}{res.stderr}"
        assert took < 3 * SAFE_TO_RUN, f"README.md:{no}: `aurora {shlex.join(args)}` took {took:.0f} s"


def test_live_section_runs_in_order_on_a_fresh_clone(tmp_path, monkeypatch):
    """The live block: the models are built before the server starts (the client waits only 60 s),
    server and client share one weights dir, and the server creates it on a fresh clone."""
    from aurora_sim.cli import app

    live = [(start, b) for start, b in shell_blocks(README.read_text(encoding="utf-8")) if "aurora serve" in b]
    assert len(live) == 1, "README.md should have one block with `aurora serve`"
    cmds = [argv[1:] for _, argv in commands(live[0][1], live[0][0]) if argv[0] == "aurora"]
    names = [a[0] for a in cmds]
    assert names.index("draft") < names.index("serve") < names.index("live") < names.index("capture")

    def params(args):
        cmd = typer.main.get_command(app)
        ctx = cmd.make_context("aurora", list(args))
        _, sub, rest = cmd.resolve_command(ctx, [*getattr(ctx, "_protected_args", []), *ctx.args])
        return sub.make_context(args[0], rest, parent=ctx).params

    serve, client = params(cmds[names.index("serve")]), params(cmds[names.index("live")])
    assert serve["weights_dir"] == client["weights_dir"]
    monkeypatch.chdir(tmp_path)  # a fresh clone: no runs/ yet
    from aurora_sim.serve.cli import ensure_weights_dir

    ensure_weights_dir(serve["weights_dir"])
    assert (tmp_path / serve["weights_dir"]).is_dir()


BAD = """
Some text.
```bash
aurora serve --model tiny --weights-dri runs/w &          # misspelled option
aurora replya shift-ci                                    # misspelled subcommand
aurora replay shift-ci --batch many                       # bad value
aurora sweep examples/sweep-lamda.yaml -o runs/x          # missing input file
aurora trace import openai-jsonl                          # missing argument
bash scripts/no-such-setup.sh && aurora models list
python3 benchmarks/no_such_bench.py ci
frobnicate --all
```
```bash
echo "unbalanced
```
```python
this is not shell and is not checked
```
"""


def test_checker_catches_mistakes():
    problems, runnable, seen = check_markdown(BAD)
    text = "\n".join(problems)
    assert seen == 10
    for needle in (
        "no such option: --weights-dri",
        "no such command 'replya'",
        "invalid value for '--batch'",
        "examples/sweep-lamda.yaml: no such file",
        "missing argument 'src'",
        "scripts/no-such-setup.sh: no such file",
        "benchmarks/no_such_bench.py: no such file",
        "frobnicate: a program this test does not know",
        "block does not parse as bash",
        "cannot be split into words: no closing quotation",
    ):
        assert needle in text.lower(), f"{needle!r} not reported; got:\n{text}"
    assert len(problems) == 10, text  # one problem per mistake
    assert [args for _, args in runnable] == [["models", "list"]]
