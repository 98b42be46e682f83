"""SGLang side of aurora-sim: drafts SGLang loads, its per-request statistics, and a backend.

    names.py    our EAGLE-3 head's weight names -> SGLang `LlamaForCausalLMEagle3` checkpoint names
    source.py   what `aurora draft export` reads: a draft directory or a replay run's registry
    export.py   writes a draft directory SGLang loads (EAGLE3 head or STANDALONE small LM)
    meta.py     per-request `meta_info` of any SGLang version -> our per-request statistics
    weights.py  the draft hot swap through SGLang's weight-update API (version-dependent)
    runtime.py  is SGLang usable here (CUDA, importable, which version)? one-line errors if not
    engine.py   SGLangEngine: the SpecEngine protocol over an in-process `sglang.Engine`
    wheel.py    SGLang's real source from its PyPI wheel, for the CPU contract tests

Nothing here imports `sglang` at module import time: everything but engine.py runs on CPU
without SGLang installed. See docs/sglang.md for what is verified on CPU and what needs a GPU.
"""
