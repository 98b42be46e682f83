"""The figure set's pages: figN_NAME.md per figure, and INDEX.md, index.html and COMMANDS.md over
every figure record (figN_NAME.json) present in the directory, so `--only` runs add to one index."""

from __future__ import annotations

import html
import json
from pathlib import Path

from aurora_sim.replay.eventlog import AL_CONVENTION

TITLES = {
    1: "Ordered stream: four arms",
    2: "Domain shift: three abrupt shifts",
    3: "Mixed traffic",
    4: "Batch size",
    5: "Day-0 deployment",
    6: "Discard sampling (λ)",
    7: "Swap policies",
}


def _f(x, d=2, suffix="") -> str:
    return "–" if x is None else (f"{x:.{d}f}{suffix}" if isinstance(x, float) else f"{x}{suffix}")


def _arms_line(nums: dict) -> str:
    return "; ".join(
        f"{a}: AL {_f(v['al'])}"
        + (f", {_f(v['speedup_vs_no_spec'], 3, '×')} vs no-spec" if v.get("speedup_vs_no_spec") is not None else "")
        for a, v in nums.items()
        if isinstance(v, dict) and "al" in v
    )


def _recovery_line(name: str, shifts: list[dict]) -> str:
    parts = [
        f"@{s['shift_at']}→{s['to']}: "
        + (f"{s['recovery_requests']}" if s["recovery_requests"] is not None else "not recovered")
        for s in shifts
    ]
    return f"{name} recovery (requests): " + ", ".join(parts)


def headline(rec: dict) -> list[str]:
    """A few lines of the figure's key numbers."""
    n, x = rec["figure"], rec["numbers"]
    if n in (1, 2, 3):
        out = [_arms_line(x)]
        for a in ("online-static", "online-scratch"):
            if a in x and x[a]["shifts"] and n == 2:
                out.append(_recovery_line(a, x[a]["shifts"]))
        if n == 3 and "online-scratch" in x:
            out.append(
                f"online-scratch vs static: {_f(x['online-scratch']['speedup_vs_static'], 3, '×')}; "
                f"day-0 ramp to the static AL: {_f(x['online-scratch']['day0_ramp_requests'])} requests"
            )
        return out
    if n == 4:
        rows = x["rows"]
        out = [
            "static speedup vs no-spec by batch: "
            + ", ".join(f"{r['batch']}: {_f(r['static']['speedup_vs_no_spec'], 3, '×')}" for r in rows),
            "static AL by batch: " + ", ".join(f"{r['batch']}: {_f(r['static']['al'])}" for r in rows),
        ]
        on = [r for r in rows if "online-scratch" in r]
        if on:
            out.append(
                "online-scratch: "
                + "; ".join(
                    f"batch {r['batch']}: AL {_f(r['online-scratch']['al'])}, "
                    f"{_f(r['online-scratch']['speedup_vs_no_spec'], 3, '×')} vs no-spec, trainer lag "
                    f"{_f(r['online-scratch']['lag']['req_mean'], 0)} requests ({_f(r['online-scratch']['lag']['ms_mean'], 0)} ms)"
                    for r in on
                )
            )
        out.append("cost model, break-even AL by batch: " + ", ".join(f"{b}: {_f(v)}" for b, v in x["breakeven_al"]))
        out.append(
            "cost model, first batch where speculation loses: "
            + ", ".join(
                f"AL {k.removeprefix('al_')}: {v if v is not None else 'never up to 512'}"
                for k, v in x["breakeven_batch"].items()
            )
        )
        return out
    if n == 5:
        return [
            f"online-scratch AL over the first n requests: {x['scratch_al_first_n']} (static: {x['static_al_first_n']})",
            (
                f"reaches the static AL after {_f(x['ramp_requests'])} requests; first swap live at request "
                f"{_f(x['first_swap_at_request'])}; {x['swaps_in_first_segment']} swaps in the first segment"
            ),
            "throughput (tok/s, first window → end of segment): "
            + "; ".join(
                f"{a}: {_f(x[f'{a}_throughput_first_window'], 0)} → {_f(x[f'{a}_throughput_end_of_segment'], 0)}"
                for a in ("online-scratch", "static", "no-spec")
            ),
        ]
    if n == 6:
        out = [
            f"{k}: AL {_f(v['al'])}; " + _recovery_line("", v["shifts"]).strip()
            for k, v in x.items()
            if k != "variants"
        ]
        for v, d in x.get("variants", {}).items():
            out.append(f"{v} − served KL alone: AL {_iv(d['al_minus_none'])}, head AL {_iv(d['head_al_minus_none'])}")
        return out
    if n == 7:
        return [
            f"{k}: AL {_f(v['al'])}, swaps {v['swaps']} / holds {v['holds']} / rollbacks {v['rollbacks']}"
            + (
                f", trainer lag {_f(v['lag']['req_mean'], 0)} requests ({_f(v['lag']['ms_mean'], 0)} ms)"
                if v.get("lag")
                else ""
            )
            for k, v in x.items()
        ]
    return []


def _iv(d: dict) -> str:
    """A paired difference over seeds: mean [95 % interval] (one seed: the mean alone)."""
    if not d.get("n"):
        return "–"
    lo_hi = d.get("ci95")
    return f"{d['mean']:+.3f}" + (f" [{lo_hi[0]:+.3f}, {lo_hi[1]:+.3f}]" if lo_hi else "") + f" ({d['n']} seeds)"


def _command_lines(rec: dict) -> list[str]:
    c = rec["commands"]
    lines = [c["figures"], "", "# or run by run:"] + c["traces"]
    for r in c["runs"]:
        lines.append(r["command"])
        if r["not_cli"]:
            lines.append(
                f"#   plus config fields with no CLI option: {', '.join(r['not_cli'])} "
                "(the exact config is runs.parquet's config_json)"
            )
    return lines


def figure_markdown(rec: dict) -> str:
    n = rec["figure"]
    runs = "\n".join(
        f"| {r['run']} | {'skipped (complete)' if r['skipped'] else 'made'} | {_f(r['wall_s'], 1)} | "
        f"{_f(r['requests'])} | {_f(r['output_tokens'])} |"
        for r in rec["commands"]["runs"]
    )
    return "\n".join(
        [
            f"# Figure {n}: {TITLES[n]} ({rec['mode']} set, seed {rec['seed']})",
            "",
            f"![{TITLES[n]}]({rec['png']})",
            "",
            f"[SVG]({rec['svg']})",
            "",
            f"{rec['caption']} W = {rec['window']} requests. {AL_CONVENTION}.",
            "",
            "## Key numbers",
            "",
            *[f"- {h}" for h in headline(rec)],
            "",
            "## Commands that made it",
            "",
            "```bash",
            *_command_lines(rec),
            "```",
            "",
            "## Runs",
            "",
            "| run | this time | wall s (when made) | requests | output tokens |",
            "|---|---|---|---|---|",
            runs,
            "",
        ]
    )


def _records(out: Path) -> list[dict]:
    recs = []
    for f in sorted(out.glob("fig*_*.json")):
        try:
            recs.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(recs, key=lambda r: r["figure"])


def write_index(out: Path) -> None:
    recs = _records(out)
    intro = (
        f"Acceptance length convention: {AL_CONVENTION} (as vLLM and SGLang). Virtual time under each run's "
        "cost model; tokens and acceptances are real (tiny proxy tier). Every figure's page has the commands "
        "that made it."
    )
    md = ["# Aurora's figures on our models", "", intro, ""]
    cmds = ["# Commands behind every figure in this directory", ""]
    body = []
    for r in recs:
        n = r["figure"]
        md += [
            f"## Figure {n}: {TITLES[n]} ({r['mode']}, seed {r['seed']})",
            "",
            f"[![{TITLES[n]}]({r['png']})]({r['name']}.md)",
            "",
            r["caption"],
            "",
            *[f"- {h}" for h in headline(r)],
            "",
            f"Commands and runs: [{r['name']}.md]({r['name']}.md) · [SVG]({r['svg']})",
            "",
        ]
        cmds += [f"## Figure {n}: {TITLES[n]}", "", "```bash", *_command_lines(r), "```", ""]
        items = "".join(f"<li>{html.escape(h)}</li>" for h in headline(r))
        pre = html.escape("\n".join(_command_lines(r)))
        body.append(
            f'<section id="fig{n}"><h2>Figure {n}: {html.escape(TITLES[n])} '
            f"<small>({html.escape(r['mode'])}, seed {r['seed']})</small></h2>"
            f'<a href="{r["svg"]}"><img src="{r["png"]}" alt="{html.escape(TITLES[n])}"></a>'
            f"<p>{html.escape(r['caption'])}</p><ul>{items}</ul>"
            f"<details><summary>Commands that made it</summary><pre>{pre}</pre></details>"
            f'<p><a href="{r["name"]}.md">{r["name"]}.md</a></p></section>'
        )
    css = (
        "body{font-family:sans-serif;max-width:1200px;margin:24px auto;padding:0 20px;line-height:1.45;font-size:14px}"
        "img{max-width:100%;border:1px solid #eee} pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:11.5px}"
        "h2{border-bottom:1px solid #ddd;margin-top:32px}"
    )
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Aurora\'s figures on our models'
        f"</title><style>{css}</style></head><body><h1>Aurora's figures on our models</h1>"
        f"<p>{html.escape(intro)}</p>{''.join(body)}</body></html>\n"
    )
    (out / "INDEX.md").write_text("\n".join(md))
    (out / "COMMANDS.md").write_text("\n".join(cmds))
    (out / "index.html").write_text(page)
