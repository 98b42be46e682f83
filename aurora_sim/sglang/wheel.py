"""SGLang's real source, taken from its PyPI wheel, for contract tests that run on CPU.

SGLang cannot be installed into this environment (its dependencies replace the CPU torch with
a multi-GB CUDA build), and even `pip install --no-deps sglang` does not import here: the
package imports `triton` at top level (sglang/srt/utils/common.py). So the contract tests read
the wheel's source instead: `fetch` downloads the wheel with `pip download --no-deps` (≈22 MB
for 0.5.17, ≈39 MB for 0.5.23, a few seconds), keeps only the handful of files the tests read
(≈1 MB per version) and deletes the wheel. `load_function` then compiles one real function
(e.g. `LlamaForCausalLMEagle3.load_weights`) out of that source so a test can execute SGLang's
own code against our files, and `struct_fields` lists a request class's fields.

    python3 -m aurora_sim.sglang.wheel fetch [VERSION ...]     (scripts/sglang_contract.sh)
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from aurora_sim.paths import cache_dir

# 0.5.17 pins torch 2.11 (the GPU machine's); 0.5.23 is the newest checked; 0.5.8.post1 is
# Aurora's base (older meta_info names).
VERSIONS = ("0.5.8.post1", "0.5.17", "0.5.23")
FILES = (
    "sglang/version.py",
    "sglang/srt/models/llama_eagle3.py",
    "sglang/srt/models/llama.py",
    "sglang/srt/layers/layernorm.py",
    "sglang/srt/managers/io_struct.py",
    "sglang/srt/managers/tokenizer_manager.py",
    "sglang/srt/managers/tokenizer_control_mixin.py",
    "sglang/srt/managers/scheduler_components/weight_updater.py",
    "sglang/srt/entrypoints/engine.py",
    "sglang/srt/speculative/eagle_worker_v2.py",
    "sglang/srt/speculative/standalone_worker_v2.py",
    "sglang/srt/server_args.py",
    "sglang/srt/sampling/sampling_params.py",
    "sglang/srt/arg_groups/fields/",  # 0.5.23 declares ServerArgs' fields here, by namespace
)
_DONE = ".complete-v5"  # bump when FILES changes, so caches refetch


class FetchError(RuntimeError):
    """The wheel could not be downloaded (the only reason contract tests may skip)."""


def src_root(version: str) -> Path:
    return cache_dir() / "sglang-src" / version


def available(version: str) -> bool:
    return (src_root(version) / _DONE).is_file()


def source(version: str, rel: str) -> Path:
    """Path of one file of the wheel (rel under sglang/srt or sglang/)."""
    path = src_root(version) / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the extracted SGLang {version} source")
    return path


def fetch(version: str, quiet: bool = True) -> Path:
    """Download the wheel (no dependencies), extract FILES, delete the wheel. Idempotent."""
    root = src_root(version)
    if available(version):
        return root
    with tempfile.TemporaryDirectory() as tmp:
        # the wheels are per-CPython from 0.5.11; pin one so any host Python fetches the same file
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"sglang=={version}",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--platform",
            "manylinux_2_34_x86_64",
            "--platform",
            "any",
            "-d",
            tmp,
            "--disable-pip-version-check",
        ]
        try:
            subprocess.run(cmd, check=True, capture_output=quiet)
        except (subprocess.CalledProcessError, OSError) as exc:  # no network, no index: nothing to test against
            raise FetchError(f"pip download sglang=={version} failed ({exc})") from None
        wheel = next(Path(tmp).glob("sglang-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            members = set(zf.namelist())
            # a FILES entry ending in "/" takes that folder's .py files; older versions lack some
            wanted = [
                m
                for m in members
                if not m.endswith("/")
                and m in FILES
                or any(f.endswith("/") and m.startswith(f) and m.endswith(".py") for f in FILES)
            ]
            for rel in wanted:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(zf.read(rel))
            meta = next(m for m in members if m.endswith(".dist-info/METADATA"))
            (root / "METADATA").write_bytes(zf.read(meta))
    (root / _DONE).write_text(wheel.name + "\n")
    return root


# ---- reading the source -------------------------------------------------------------------------
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def find(path: Path, qualname: str) -> ast.AST:
    """The ast node of `Class.method`, `Class` or `function` in a source file."""
    node: ast.AST = _tree(path)
    for part in qualname.split("."):
        node = next((n for n in node.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part), None)
        if node is None:
            raise LookupError(f"{path}: no {qualname}")
    return node


def load_function(path: Path, qualname: str, namespace: dict):
    """Compile one real function or method from the source, annotations and decorators removed
    (they name types we do not import), into `namespace` (which supplies its globals)."""
    fn = find(path, qualname)
    assert isinstance(fn, ast.FunctionDef), qualname
    fn.decorator_list = []
    fn.returns = None
    for arg in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs, fn.args.vararg, fn.args.kwarg]:
        if arg is not None:
            arg.annotation = None
    module = ast.fix_missing_locations(ast.Module(body=[fn], type_ignores=[]))
    exec(compile(module, str(path), "exec"), namespace)
    return namespace[fn.name]


def struct_fields(path: Path, class_name: str) -> dict[str, bool]:
    """A request class's fields (msgspec Struct or dataclass): name -> has a default."""
    cls = find(path, class_name)
    return {
        n.target.id: n.value is not None
        for n in cls.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }


def server_arg_fields(version: str) -> set[str]:
    """ServerArgs' field names (= `sglang.Engine` keyword arguments): declared on the class up to
    0.5.17, in per-namespace classes under arg_groups/fields/ in 0.5.23."""
    names = set(struct_fields(source(version, "sglang/srt/server_args.py"), "ServerArgs"))
    for path in sorted((src_root(version) / "sglang/srt/arg_groups/fields").glob("*.py")):
        for cls in _tree(path).body:
            if isinstance(cls, ast.ClassDef):
                names |= set(struct_fields(path, cls.name))
    return names


def method_params(path: Path, qualname: str) -> list[str]:
    fn = find(path, qualname)
    return [a.arg for a in [*fn.args.args, *fn.args.kwonlyargs]]


def subscript_keys(path: Path, func_qualname: str, var: str) -> set[str]:
    """String keys assigned as `var["key"] = ...` inside one function (e.g. meta_info fields)."""
    keys = set()
    for n in ast.walk(find(path, func_qualname)):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                if (
                    isinstance(t, ast.Subscript)
                    and isinstance(t.value, ast.Name)
                    and t.value.id == var
                    and isinstance(t.slice, ast.Constant)
                    and isinstance(t.slice.value, str)
                ):
                    keys.add(t.slice.value)
    return keys


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "fetch":
        print("usage: python3 -m aurora_sim.sglang.wheel fetch [VERSION ...]", file=sys.stderr)
        return 2
    for v in argv[1:] or VERSIONS:
        print(f"sglang {v}: {fetch(v, quiet=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
