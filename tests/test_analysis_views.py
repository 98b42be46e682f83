"""analysis.views: DuckDB views over real replays agree with summary.summarize and with the
numbers recomputed from the Parquet tables by hand (polars)."""

from __future__ import annotations

import itertools
import shutil

import polars as pl
import pytest
from analysis_runs import ARMS, PER_SEGMENT, W, make_runs

from analysis.views import connect, list_views, view_docs
from aurora_sim.errors import AuroraError
from aurora_sim.replay.compare import add_speedups
from aurora_sim.replay.eventlog import read_table
from aurora_sim.replay.summary import per_request, recovery, summarize


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained_head_dir):
    return make_runs(tmp_path_factory.getbasetemp() / "analysis_runs", trained_head_dir)


@pytest.fixture(scope="module")
def con(runs):
    c = connect([runs[a] for a in ARMS])
    yield c
    c.close()


def q(con, sql, *params):
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def one(con, sql, *params):
    rows = q(con, sql, *params)
    assert len(rows) == 1, rows
    return rows[0]


def test_every_documented_view_exists_with_columns(con):
    views = list_views(con)
    names = {v["name"] for v in views}
    assert {
        "runs",
        "requests",
        "rounds",
        "train_steps",
        "swaps",
        "versions",
        "run_info",
        "per_request",
        "rolling_al",
        "acceptance",
        "al_by_segment",
        "al_by_domain",
        "per_position_acceptance",
        "throughput",
        "speedup",
        "recovery",
        "day0_ramp",
        "swap_timeline",
        "trainer_lag",
        "trainer_loss",
        "run_summary",
        "definitions",
    } <= names
    for v in views:
        assert v["doc"] and v["columns"], v["name"]
    assert len(names) == len(view_docs())  # no view documented twice
    conv = con.execute("SELECT al_convention()").fetchone()[0]
    assert "bonus" in conv


def test_views_agree_with_summarize(con, runs):
    checked_shift = 0
    for arm in ARMS:
        s = summarize(runs[arm])
        rid = s["run_id"]
        info = one(con, "SELECT * FROM run_info WHERE run_id = ?", rid)
        assert info["arm"] == arm and info["label"] == arm
        al = one(con, "SELECT * FROM acceptance WHERE run_id = ?", rid)
        assert al["spec_decode_acceptance_length"] == pytest.approx(s["acceptance_length"], abs=5e-5)
        assert al["requests"] == s["completed"] == 2 * PER_SEGMENT
        segs = q(con, "SELECT * FROM al_by_segment WHERE run_id = ? ORDER BY segment", rid)
        assert [(x["segment"], x["domain"], x["first_request"], x["requests"]) for x in segs] == [
            (x["segment"], x["domain"], x["first_request"], x["requests"]) for x in s["segments"]
        ]
        for mine, theirs in zip(segs, s["segments"]):
            assert mine["spec_decode_acceptance_length"] == pytest.approx(theirs["acceptance_length"], abs=5e-5)
        summ = one(con, "SELECT * FROM run_summary WHERE run_id = ?", rid)
        assert summ["throughput_tok_s"] == pytest.approx(s["throughput_tok_s"], rel=1e-12)
        assert summ["output_tokens"] == s["output_tokens"] and summ["virtual_s"] == pytest.approx(s["virtual_s"])
        for k in ("train_steps", "train_steps_dropped", "swaps", "rollbacks", "holds"):
            assert summ[k] == s[k], k
        if s["final_loss"] is None:
            assert summ["final_loss"] is None
        else:
            assert summ["final_loss"] == pytest.approx(s["final_loss"], abs=1e-5)
        if s["trainer_lag_ms_mean"] is None:
            assert summ["trainer_lag_ms_mean"] is None
        else:
            assert summ["trainer_lag_ms_mean"] == pytest.approx(s["trainer_lag_ms_mean"], abs=1e-3)
        # recovery with summary's window (50: longer than the segment, so None) ...
        for sh in s["shifts"]:
            mine = one(con, "SELECT * FROM recovery WHERE run_id = ? AND shift_at = ?", rid, sh["shift_at"])
            assert mine["recovery_requests"] == sh["recovery_requests"]
            assert mine["level_before"] == pytest.approx(sh["level_before"]) if sh["level_before"] else True
            assert mine["al_after_head"] == pytest.approx(sh["al_after_head"]) if sh["al_after_head"] else True
    # ... and with short windows (W, then shorter), against summary.recovery on the same frame;
    # whether an arm recovers within a 32-request segment depends on the model build, so the
    # windows shrink until one does
    for window in (W, W // 2, W // 4):
        con.execute(f"SET VARIABLE aurora_window = {window}")
        try:
            for arm in ARMS[1:]:
                rid = read_table(runs[arm], "runs")["run_id"][0]
                frame = per_request(runs[arm])
                theirs = recovery(frame, PER_SEGMENT, 2 * PER_SEGMENT, window=window)
                mine = one(con, "SELECT * FROM recovery WHERE run_id = ?", rid)
                assert (mine["window"], mine["shift_at"]) == (window, PER_SEGMENT)
                assert mine["recovery_requests"] == theirs["recovery_requests"], arm
                assert mine["level_before"] == pytest.approx(theirs["level_before"])
                checked_shift += theirs["recovery_requests"] is not None
        finally:
            con.execute("RESET VARIABLE aurora_window")
        if checked_shift:
            break
    assert checked_shift >= 1  # at least one arm recovers within the segment: the comparison has teeth
    assert con.execute("SELECT aurora_window()").fetchone()[0] == 50


def test_rolling_al_and_window_parameter(con, runs):
    rid = read_table(runs["online-scratch"], "runs")["run_id"][0]
    frame = per_request(runs["online-scratch"])
    gen, rnd = frame["generated"].to_list(), frame["spec_rounds"].to_list()
    for w in (W, 20):
        con.execute(f"SET VARIABLE aurora_window = {w}")
        rows = q(con, "SELECT * FROM rolling_al WHERE run_id = ? ORDER BY request_index", rid)
        assert [r["request_index"] for r in rows] == frame["request_index"].to_list()
        for i, r in enumerate(rows):
            lo = max(0, i - w + 1)
            assert r["window_requests"] == i - lo + 1 and r["window"] == w
            assert r["spec_decode_acceptance_length"] == pytest.approx(sum(gen[lo : i + 1]) / sum(rnd[lo : i + 1]))
    con.execute("RESET VARIABLE aurora_window")


def test_per_position_rates_are_vllm_cumulative_and_sum_to_al(con, runs):
    for arm in ("static", "online-static", "online-scratch"):
        rounds = read_table(runs[arm], "rounds").filter(pl.col("proposed") > 0)
        rid = rounds["run_id"][0]
        rows = q(con, "SELECT * FROM per_position_acceptance WHERE run_id = ? ORDER BY position", rid)
        assert [r["position"] for r in rows] == list(range(1, int(rounds["proposed"].max()) + 1))
        for r in rows:
            expect = (rounds["accepted"] >= r["position"]).sum() / rounds.height
            assert r["spec_decode_per_position_acceptance_rate"] == pytest.approx(expect)
        rates = [r["spec_decode_per_position_acceptance_rate"] for r in rows]
        assert all(a >= b for a, b in itertools.pairwise(rates)) and 0 < rates[0] <= 1
        al_draft = (rounds["accepted"].sum() + rounds.height) / rounds.height
        assert 1 + sum(rates) == pytest.approx(al_draft)
        acc = one(con, "SELECT * FROM acceptance WHERE run_id = ?", rid)
        assert acc["spec_decode_acceptance_rate"] == pytest.approx(rounds["accepted"].sum() / rounds["proposed"].sum())
    assert q(con, "SELECT * FROM per_position_acceptance p JOIN run_info USING (run_id) WHERE arm = 'no-spec'") == []


def test_speedups_match_compare(con, runs):
    summaries = {arm: summarize(runs[arm]) for arm in ARMS}
    add_speedups(summaries)
    for arm, s in summaries.items():
        row = one(con, "SELECT * FROM speedup WHERE run_id = ?", s["run_id"])
        for theirs, mine in (("speedup_vs_no-spec", "speedup_vs_no_spec"), ("speedup_vs_static", "speedup_vs_static")):
            if theirs in s:
                assert row[mine] == pytest.approx(s[theirs], abs=5e-5), (arm, mine)
            else:
                assert row[mine] is None, (arm, mine)
    assert one(con, "SELECT count(DISTINCT comparable_key) AS n FROM run_info")["n"] == 1


def test_day0_ramp_by_hand(con, runs):
    con.execute(f"SET VARIABLE aurora_window = {W}")
    try:
        row = one(con, "SELECT * FROM day0_ramp")
        static = summarize(runs["static"])
        assert row["label"] == "online-scratch" and row["static_run_id"] == static["run_id"]
        seg_al = {x["segment"]: x["acceptance_length"] for x in static["segments"]}
        frame = per_request(runs["online-scratch"])
        gen, rnd, segs = frame["generated"].to_list(), frame["spec_rounds"].to_list(), frame["segment"].to_list()
        expect = expect_all = None
        for n in range(W, len(gen) + 1):
            al = sum(gen[n - W : n]) / sum(rnd[n - W : n])
            if expect is None and al >= seg_al[segs[n - 1]]:
                expect = n
            if expect_all is None and al >= static["acceptance_length"]:
                expect_all = n
        assert row["ramp_requests"] == expect and row["ramp_requests_overall"] == expect_all
        assert row["static_acceptance_length"] == pytest.approx(static["acceptance_length"], abs=5e-5)
    finally:
        con.execute("RESET VARIABLE aurora_window")


def test_trainer_lag_and_swap_timeline(con, runs):
    rb = connect([runs["rollback"]])
    kinds = {r[0] for r in rb.execute("SELECT kind FROM swap_timeline WHERE applied").fetchall()}
    assert kinds == {"swap", "rollback"}
    # a rollback flips back to the version that served before the last flip; serving_versions follows
    applied = q(rb, "SELECT * FROM swap_timeline WHERE applied ORDER BY effective_ns, decision")
    for prev, r in itertools.pairwise(applied):
        assert r["from_version"] == prev["to_version"]
        if r["kind"] == "rollback":
            assert r["to_version"] == prev["from_version"] and r["newest_capture_ns"] is None
    via = [r["via"] for r in q(rb, "SELECT via FROM serving_versions ORDER BY interval")]
    assert via[0] == "init" and "rollback" in via
    for arm in ("online-static", "online-scratch", "rollback"):
        c = rb if arm == "rollback" else con
        swaps = read_table(runs[arm], "swaps")
        req = read_table(runs[arm], "requests")
        rid = swaps["run_id"][0]
        applied = swaps.filter(pl.col("kind").is_in(["swap", "rollback"]) & pl.col("newest_capture_ns").is_not_null())
        assert applied.height > 0
        rows = {r["decision"]: r for r in q(c, "SELECT * FROM trainer_lag WHERE run_id = ?", rid)}
        assert sorted(rows) == sorted(applied["decision"].to_list())
        for s in applied.iter_rows(named=True):
            r = rows[s["decision"]]
            assert r["trainer_lag_ns"] == s["effective_ns"] - s["newest_capture_ns"] > 0
            meanwhile = req.filter(
                (pl.col("finish_ns") > s["newest_capture_ns"]) & (pl.col("finish_ns") <= s["effective_ns"])
            ).height
            assert r["requests_meanwhile"] == meanwhile
        tl = q(c, "SELECT * FROM swap_timeline WHERE run_id = ? ORDER BY decision", rid)
        assert len(tl) == swaps.height
        # the serving intervals tile [0, makespan) and every verify round with a draft falls in one
        iv = q(c, "SELECT * FROM serving_versions WHERE run_id = ? ORDER BY interval", rid)
        makespan = one(c, "SELECT makespan_ns FROM run_info WHERE run_id = ?", rid)["makespan_ns"]
        assert iv[0]["since_ns"] == 0 and iv[-1]["until_ns"] == makespan
        assert all(a["until_ns"] == b["since_ns"] for a, b in itertools.pairwise(iv))
        drafted = read_table(runs[arm], "rounds").filter(pl.col("draft_version").is_not_null()).height
        assert sum(x["verify_rounds"] for x in iv) == drafted
    rb.close()


def test_runs_with_empty_tables_and_an_unfinished_run(tmp_path, runs):
    # no swaps / train_steps / versions parts at all (a run killed before its first flush has none)
    a = tmp_path / "a"
    shutil.copytree(runs["static"], a)
    for t in ("swaps", "train_steps", "versions"):
        shutil.rmtree(a / t)
    # an unfinished run: status running, end_ns 0 -> the makespan is the last round's end
    rows = read_table(runs["static"], "runs").with_columns(
        pl.lit("running").alias("status"), pl.lit(0, pl.Int64).alias("end_ns")
    )
    rows.write_parquet(a / "runs.parquet")
    c = connect([a])
    try:
        for v in list_views(c):  # every view answers
            c.execute(f"SELECT * FROM {v['name']}").fetchall()
        assert c.execute("SELECT count(*) FROM swaps").fetchone()[0] == 0
        assert [d[1] for d in c.execute("DESCRIBE swaps").fetchall()][:3] == ["VARCHAR", "INTEGER", "VARCHAR"]
        last = read_table(a, "rounds")["t_end_ns"].max()
        s = one(c, "SELECT * FROM run_summary")
        assert s["status"] == "running" and s["virtual_s"] == pytest.approx(last / 1e9) and s["swaps"] == 0
        assert s["spec_decode_acceptance_length"] == pytest.approx(
            summarize(runs["static"])["acceptance_length"], abs=5e-5
        )
    finally:
        c.close()


def test_bad_run_directories(tmp_path, runs):
    with pytest.raises(AuroraError, match="not a run directory"):
        connect([tmp_path / "missing"])
    with pytest.raises(AuroraError, match="not a run directory"):
        connect([tmp_path])
    with pytest.raises(AuroraError, match="given twice"):
        connect([runs["static"], runs["static"]])
    copy = tmp_path / "copy"
    shutil.copytree(runs["static"], copy)
    with pytest.raises(AuroraError, match="appears twice"):
        connect([runs["static"], copy])
    bad = tmp_path / "bad"
    shutil.copytree(runs["no-spec"], bad)
    (bad / "runs.parquet").write_bytes(b"not parquet")
    with pytest.raises(AuroraError, match="cannot read"):
        connect([bad])
