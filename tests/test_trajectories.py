"""The greedy trajectory cache on the real tiny tier: equal to the engine's own output, reused,
shared between slices, never trusted when bad, and `aurora cache list|clear`."""

import json
import shutil
import struct
import zipfile
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.errors import AuroraError
from aurora_sim.replay import trajectories as T

runner = CliRunner()


@pytest.fixture(scope="module")
def requests(tiny_target, tiny_tokenizer, tiny_dir, heldout_prompts):
    """12 requests over the three domains, max_new_tokens 16-40, the tiny tier's real stop ids;
    every other one also stops at a token its greedy output contains (so both reasons occur)."""
    from aurora_sim.generate import stop_ids

    stops = stop_ids(tiny_tokenizer, tiny_dir)
    picks = heldout_prompts[::12][:12]
    plain = [GenRequest(f"r{i}", ids, 16 + (i * 7) % 25) for i, (_, ids) in enumerate(picks)]
    greedy = TorchSpecEngine(tiny_target, None, gamma=0, max_batch=12).run(plain)
    out = []
    for i, (r, g) in enumerate(zip(plain, greedy)):
        extra = (g.output_ids[len(g.output_ids) // 2],) if i % 2 == 0 else ()
        out.append(replace(r, stop_ids=tuple(stops) + extra))
    return out


@pytest.fixture(scope="module")
def reference(tiny_target, requests):
    return TorchSpecEngine(tiny_target, None, gamma=0, max_batch=4).run(requests)


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_target, tiny_dir, requests):
    root = tmp_path_factory.mktemp("traj")
    logs = []
    trajs, info = T.trajectories_for(tiny_target, tiny_dir, requests, root=root, progress=False, log=logs.append)
    assert not logs
    return root, trajs, info


def test_trajectories_equal_the_engine(tiny_target, requests, reference, built):
    _, trajs, info = built
    assert info["hit"] is False and info["decoded"] == len(requests) and info["reused"] == 0
    assert info["entry"].is_file() and info["build_s"] > 0
    assert {r.finish_reason for r in reference} == {"stop", "length"}
    for ref, t in zip(reference, trajs):
        assert t.output_ids == tuple(ref.output_ids) and t.finish_reason == ref.finish_reason
        assert len(t.overhang) == T.OVERHANG and -1 not in t.overhang
    # the overhang is the greedy continuation past the end, stop ids ignored: decode it again
    # independently, from prompt + output as the prompt
    cont = [GenRequest(r.request_id, r.prompt_ids + t.output_ids, T.OVERHANG) for r, t in zip(requests, trajs)]
    for res, t in zip(TorchSpecEngine(tiny_target, None, gamma=0, max_batch=12).run(cont), trajs):
        assert tuple(res.output_ids) == t.overhang
    # decode_trajectories alone, at another batch size, and with a duplicated request
    again = T.decode_trajectories(tiny_target, requests + requests[:1], batch=5)
    assert again == trajs + trajs[:1]


def test_hit_and_slices_share(tiny_target, tiny_dir, requests, built):
    root, trajs, _ = built
    logs = []
    same, info = T.trajectories_for(tiny_target, tiny_dir, requests, root=root, progress=False, log=logs.append)
    assert info["hit"] and info["exact"] and info["decoded"] == 0 and same == trajs
    sub, info = T.trajectories_for(tiny_target, tiny_dir, requests[2:7], root=root, progress=False, log=logs.append)
    assert info["hit"] and not info["exact"] and info["decoded"] == 0 and info["reused"] == 5
    assert sub == trajs[2:7] and info["entry"].is_file()
    # two changed requests: only those are decoded, the rest is reused
    mixed = requests[:4] + [replace(r, max_new_tokens=r.max_new_tokens - 3) for r in requests[4:6]]
    got, info = T.trajectories_for(tiny_target, tiny_dir, mixed, root=root, progress=False, log=logs.append)
    assert info["decoded"] == 2 and info["reused"] == 4 and not info["hit"]
    assert got[:4] == trajs[:4] and got[4:] == T.decode_trajectories(tiny_target, mixed[4:])
    assert not logs
    with pytest.raises(AuroraError, match="temperature"):
        T.request_key(replace(requests[0], temperature=0.7))
    assert T.request_key(
        replace(requests[0], request_id="x", seed=9, stop_ids=requests[0].stop_ids[::-1])
    ) == T.request_key(requests[0])


def _rewrite(path, header_edit=None, ids_edit=None):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    if header_edit:
        header_edit(header)
    if ids_edit:
        arrays["ids"] = ids_edit(arrays["ids"].copy())
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez_compressed(path, **arrays)


def _flip_payload_byte(path):
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("ids.npy")
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.compress_size // 2] ^= 0x5A
    path.write_bytes(bytes(raw))


def _other_model(header):
    header["model"] = "0" * 64


def _other_tokens(ids):
    ids[len(ids) // 2] += 1
    return ids


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "unreadable"),
        (_flip_payload_byte, ""),
        (lambda p: _rewrite(p, header_edit=_other_model), "another model"),
        (lambda p: _rewrite(p, ids_edit=_other_tokens), "checksum"),
        (lambda p: _rewrite(p, header_edit=lambda h: h.update(requests=h["requests"][::-1])), "other requests"),
    ],
    ids=["truncated", "flipped-byte", "other-model", "edited-payload", "other-trace"],
)
def test_bad_entry_is_rebuilt(tmp_path, tiny_target, tiny_dir, requests, built, damage, reason):
    _, trajs, info = built
    entry = tmp_path / info["entry"].parent.name / info["entry"].name
    entry.parent.mkdir()
    shutil.copy(info["entry"], entry)
    damage(entry)
    logs = []
    got, info2 = T.trajectories_for(tiny_target, tiny_dir, requests, root=tmp_path, progress=False, log=logs.append)
    assert got == trajs and info2["entry"] == entry and info2["decoded"] == len(requests)
    assert len(logs) == 1 and logs[0].startswith(f"{entry}: ") and logs[0].endswith("; rebuilding"), logs
    assert reason in logs[0]
    again, info3 = T.trajectories_for(tiny_target, tiny_dir, requests, root=tmp_path, progress=False, log=logs.append)
    assert info3["exact"] and again == trajs and len(logs) == 1  # the rebuilt entry is good


def test_bad_other_entry_is_skipped(tmp_path, tiny_target, tiny_dir, requests, built):
    _, trajs, info = built
    other = tmp_path / info["entry"].parent.name / info["entry"].name
    other.parent.mkdir()
    shutil.copy(info["entry"], other)
    _rewrite(other, ids_edit=_other_tokens)
    logs = []
    got, info2 = T.trajectories_for(tiny_target, tiny_dir, requests[:3], root=tmp_path, progress=False, log=logs.append)
    assert got == trajs[:3] and info2["decoded"] == 3
    assert logs == [f"{other}: payload checksum mismatch; skipped"]


def test_cache_cli_list_and_clear(tmp_path, monkeypatch, built):
    from aurora_sim.cli import app

    monkeypatch.setenv("AURORA_CACHE", str(tmp_path))
    assert T.cache_root() == tmp_path / "trajectories"
    root, _, info = built
    shutil.copytree(info["entry"].parent, T.cache_root() / info["entry"].parent.name)
    (T.cache_root() / "0123456789abcdef").mkdir()
    (T.cache_root() / "0123456789abcdef" / "junk.npz").write_bytes(b"not a zip")
    model = info["entry"].parent.name

    res = runner.invoke(app, ["cache", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    good = [r for r in rows if r["valid"]]
    assert {r["model"] for r in good} == {model} and all(r["name"] == "tiny" for r in good)
    assert any(r["requests"] == 12 and r["tokens"] > 0 for r in good)
    assert [r["valid"] for r in rows if r["model"] == "0123456789abcdef"] == [False]

    res = runner.invoke(app, ["cache", "list"])
    assert res.exit_code == 0 and f"{len(rows)} entries" in res.output, res.output

    res = runner.invoke(app, ["cache", "clear", "--model", model[:6]], input="n\n")
    assert res.exit_code == 1 and len(T.list_entries()) == len(rows)  # declined

    size = sum(r["bytes"] for r in good)
    res = runner.invoke(app, ["cache", "clear", "--model", model[:6], "--yes"])
    assert res.exit_code == 0 and "freed" in res.output, res.output
    assert [r["model"] for r in T.list_entries()] == ["0123456789abcdef"]
    assert not (T.cache_root() / model).exists()
    assert T.clear(model="0123") == len(b"not a zip") and T.list_entries() == []
    assert size > 0

    res = runner.invoke(app, ["cache", "clear", "--model", "not-hex"])
    assert res.exit_code == 2 and "error:" in res.output and len(res.output.strip().splitlines()) == 1

    res = runner.invoke(app, ["cache", "clear", "--yes"])
    assert res.exit_code == 0 and "nothing to clear" in res.output


def test_a_killed_large_build_resumes_from_its_stored_chunks(
    tmp_path, tiny_target, tiny_dir, requests, built, monkeypatch
):
    """Large builds are stored chunk by chunk: a build killed after its first chunk keeps that
    chunk, and the next build decodes only the rest."""
    monkeypatch.setattr(T, "CHUNK", 5)
    real = T.decode_trajectories
    calls = []

    def dies_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "decode_trajectories", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        T.trajectories_for(tiny_target, tiny_dir, requests, root=tmp_path, progress=False)
    assert len(list(tmp_path.rglob("*.npz"))) == 1  # the first chunk
    monkeypatch.setattr(T, "decode_trajectories", real)
    trajs, info = T.trajectories_for(tiny_target, tiny_dir, requests, root=tmp_path, progress=False)
    assert info["reused"] == 5 and info["decoded"] == len(requests) - 5
    assert trajs == built[1]
    # this build's own chunks were folded into the full entry (the killed build's one stays)
    assert len(list(tmp_path.rglob("*.npz"))) == 2
    assert T.trajectories_for(tiny_target, tiny_dir, requests, root=tmp_path, progress=False)[1]["exact"]
