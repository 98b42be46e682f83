"""`aurora sweep`: spec parsing, and real sweeps of short replays on a local Ray instance and in
process: same bytes alone / sequential / parallel, a failed run recorded while the rest finish,
complete runs skipped, and a worker killed mid-run has its run retried to the same bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aurora_sim.errors import AuroraError
from aurora_sim.sweep.spec import load_spec

ray = pytest.importorskip("ray", reason="Ray is not installed (scripts/setup.sh installs it)")

SPEC = """
name: t
base: {trace: shift-mini, limit: 16, every: 2}
grid:
  arm: [static, online-static]
runs:
  - {arm: online-scratch, limit: 24, lambda_discard: 0.5}
  - {name: broken, arm: static, static_draft: no-such-draft-dir}
"""


def _write(tmp: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_DEDUP_LOGS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "aurora_sim", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def _files(run_dir: Path) -> dict[str, bytes]:
    """Everything a run wrote except wall.json (wall-clock time, by design not deterministic)."""
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != "wall.json"
    }


# ---- the spec ---------------------------------------------------------------------------------------


def test_spec_grid_aliases_and_merging(tmp_path):
    sw = load_spec(
        _write(
            tmp_path,
            """
base: {trace: shift-mini, limit: 40}
grid:
  arm: [no-spec, online-static]
  lambda_discard: [0, 0.5]
  learner.capacity: [64]
""",
        )
    )
    # no-spec ignores the learner: its two λ entries are one run; online-static keeps both
    assert len(sw.runs) == 3
    by_arm = {}
    for r in sw.runs:
        by_arm.setdefault(r.config.arm, []).append(r)
    assert len(by_arm["no-spec"]) == 1 and len(by_arm["no-spec"][0].also) == 1
    lams = sorted(r.config.learner.lambda_discard for r in by_arm["online-static"])
    assert lams == [0.0, 0.5] and all(
        r.config.learner.capacity == 64 and r.config.limit == 40 for r in by_arm["online-static"]
    )
    # YAML's 0 is the float 0.0: the same config as the CLI's default, so the same hash and bytes
    zero = next(r for r in by_arm["online-static"] if r.config.learner.lambda_discard == 0)
    from aurora_sim.replay.compare import arm_config
    from aurora_sim.replay.config import ReplayConfig

    cli = arm_config(ReplayConfig(trace="shift-mini", limit=40), "online-static").with_(learner_capacity=64)
    assert zero.config.config_hash() == cli.config_hash() and zero.name.endswith(cli.config_hash()[:8])


def test_example_spec_parses():
    sw = load_spec(Path(__file__).parent.parent / "examples" / "sweep-lambda.yaml")
    # 2 seeds x (no-spec + static + 2 online arms x 2 λ) + the explicit lazy run; 4 no-spec/static entries merged
    assert len(sw.runs) == 13 and sum(len(r.also) for r in sw.runs) == 4
    assert any(r.name.startswith("lazy-") and r.config.controller.policy == "lazy" for r in sw.runs)


def test_spec_trace_file_resolved_against_spec_folder(tmp_path):
    (tmp_path / "t.parquet").write_bytes(b"")
    sw = load_spec(_write(tmp_path, "base: {trace: t.parquet}\n"))
    assert sw.runs[0].config.trace == str((tmp_path / "t.parquet").resolve())


@pytest.mark.parametrize(
    "text, words",
    [
        ("base: {polcy: lazy}\n", "unknown key 'polcy'"),
        ("grid: {arm: [fast]}\n", "arm 'fast' is not one of"),
        ("grid: {seed: 3}\n", "grid.seed must be a non-empty list"),
        ("grid: {lr: [fast]}\n", "learner_lr must be a number"),
        ("base: {policy: nope}\n", "unknown policy 'nope'"),
        ("sweeps: []\n", "unknown top-level key 'sweeps'"),
        ("base: [1\n", "not valid YAML"),
    ],
)
def test_spec_errors_are_one_line_naming_the_file(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(AuroraError) as e:
        load_spec(path)
    assert str(path) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)


def test_cli_bad_spec_exits_nonzero_and_writes_nothing(tmp_path):
    spec = _write(tmp_path, "grid: {arm: [fast]}\n")
    r = _cli("sweep", spec, "-o", tmp_path / "out")
    assert r.returncode != 0 and "arm 'fast'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


# ---- real sweeps ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """The same spec swept on local Ray (2 workers) and sequentially in process."""
    tmp = tmp_path_factory.mktemp("sweep")
    spec = _write(tmp, SPEC)
    par = _cli("sweep", spec, "-o", tmp / "ray", "--workers", "2")
    seq = _cli("sweep", spec, "-o", tmp / "seq", "--backend", "local")
    return tmp, spec, par, seq


def test_sweep_records_failure_and_finishes_the_rest(sweeps):
    tmp, _, par, seq = sweeps
    for r, d in ((par, "ray"), (seq, "seq")):
        assert r.returncode == 1, r.stderr[-2000:]  # one run failed: the sweep says so at the end
        doc = json.loads((tmp / d / "sweep.json").read_text())
        status = {row["run"].rsplit("-", 1)[0]: row for row in doc["runs"]}
        assert set(status) == {"static", "online-static", "online-scratch-limit24-lambda_discard0.5", "broken"}
        assert status["broken"]["status"] == "failed" and "no-such-draft-dir" in status["broken"]["error"]
        assert not Path(status["broken"]["run_dir"]).exists()  # nothing half-written
        ok = [row for k, row in status.items() if k != "broken"]
        assert all(row["status"] == "done" for row in ok)
        # key metrics from the analysis views, speedup paired within the sweep (static is the baseline)
        # a day-0 head over 24 requests may accept nothing on some builds (AL exactly 1.0)
        assert all(1.0 <= row["spec_decode_acceptance_length"] < 5.0 for row in ok)
        assert all(status[k]["spec_decode_acceptance_length"] > 1.0 for k in ("static", "online-static"))
        assert status["online-static"]["speedup_vs_static"] is not None
        assert status["online-scratch-limit24-lambda_discard0.5"]["train_steps"] > 0
        assert "failed" in r.stderr and (tmp / d / "summary.csv").read_text().count("\n") == 5


def test_same_bytes_sequential_parallel_and_alone(sweeps):
    tmp, _, _, _ = sweeps
    names = sorted(p.name for p in (tmp / "ray" / "runs").iterdir() if not p.name.startswith("."))
    assert len(names) == 3  # the failed run left nothing behind
    assert names == sorted(p.name for p in (tmp / "seq" / "runs").iterdir() if not p.name.startswith("."))
    for n in names:
        a, b = _files(tmp / "ray" / "runs" / n), _files(tmp / "seq" / "runs" / n)
        assert a.keys() == b.keys() and a == b, n
    swept = next(n for n in names if n.startswith("online-static"))
    assert any(k.startswith("drafts/") for k in _files(tmp / "ray" / "runs" / swept))  # it did swap
    alone = tmp / "alone"
    r = _cli("replay", "shift-mini", "--limit", "16", "--every", "2", "--init", "static", "-o", alone)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _files(alone) == _files(tmp / "ray" / "runs" / swept)


def test_rerun_skips_complete_runs(sweeps):
    tmp, spec, _, _ = sweeps
    before = {p: p.stat().st_mtime_ns for p in (tmp / "seq" / "runs").rglob("*.parquet")}
    r = _cli("sweep", spec, "-o", tmp / "seq", "--backend", "local")
    assert r.returncode == 1  # the broken run is tried again and fails again
    assert "0 made, 3 skipped" in " ".join(r.stderr.split())
    assert before == {p: p.stat().st_mtime_ns for p in (tmp / "seq" / "runs").rglob("*.parquet")}


def test_killed_worker_is_retried(sweeps):
    """SIGKILL the Ray worker in the middle of a run: Ray re-runs the task on another worker and
    the run installed is byte-identical to the sequential sweep's."""
    import psutil

    from aurora_sim.sweep.execute import Job, execute

    tmp, spec, _, _ = sweeps
    run = next(r for r in load_spec(spec).runs if r.name.startswith("online-scratch"))
    out = tmp / "killed"
    started = not ray.is_initialized()
    if started:
        ray.init(
            address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, object_store_memory=256 * 1024**2
        )
    result = {}
    worker = threading.Thread(
        target=lambda: result.setdefault(
            "o", execute([Job(run.name, run.config, out / run.name)], backend="ray", retries=2)
        )
    )
    try:
        worker.start()
        victim, t0 = None, time.time()
        while victim is None and time.time() - t0 < 120:
            for p in psutil.process_iter(["pid", "name"]):
                if (p.info["name"] or "").startswith("ray::aurora-sweep:"):
                    victim = p.info["pid"]
                    break
            time.sleep(0.05)
        assert victim is not None, "the sweep's task never started"
        time.sleep(1.0)  # let it get into the replay
        os.kill(victim, signal.SIGKILL)
        worker.join(timeout=300)
    finally:
        if started:
            ray.shutdown()
    assert "o" in result, "the retried run did not finish within 300 s (a machine this busy is too slow)"
    (o,) = result["o"]
    assert o.status == "done", o.error
    assert not o.worker.endswith(f":{victim}")
    assert _files(out / run.name) == _files(tmp / "seq" / "runs" / run.name)


def test_sweep_on_an_existing_cluster_by_address(sweeps, tmp_path):
    """`--address`: a Ray head started apart (loopback only, stopped by this test) runs the sweep;
    the run installed by the driver is byte-identical to the sequential one."""
    import socket

    tmp, _, _, _ = sweeps
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a throw-away local head: no token to hand around
    head = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "1",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        one = _write(tmp_path, "base: {trace: shift-mini, limit: 16, every: 2}\ngrid: {arm: [static]}\n")
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "aurora_sim",
                "sweep",
                str(one),
                "-o",
                str(tmp_path / "cl"),
                "--address",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    (name,) = [p.name for p in (tmp_path / "cl" / "runs").iterdir()]
    assert name.startswith("static-") and _files(tmp_path / "cl" / "runs" / name) == _files(tmp / "seq" / "runs" / name)
