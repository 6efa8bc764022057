"""What a model directory needs to be served with tool calls.

vLLM is given our template with `--chat-template` and parses calls with `--tool-call-parser hermes`.
`transformers serve` reads the template from the tokenizer and parses calls with the tokenizer's
`response_template`; it knows one only for Qwen-family model types, so for other architectures (the
bundled SmolLM2 is `llama`) the Qwen2.5 one is written into the tokenizer.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .. import chat_template

QWEN_MODEL_TYPES = ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe")
# Only weights are hard-linked: the tokenizer files are rewritten in the copy, and writing through a
# link would change the source directory too.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# The template file a servable copy carries, for vLLM's `--chat-template` (transformers' own name).
CHAT_TEMPLATE_FILE = "chat_template.jinja"


def _qwen_response_template() -> dict[str, Any]:
    # transformers keeps its per-architecture parsing rules in a private table; ours must be the very
    # same rule for the Qwen2.5 template, so it is looked up there rather than copied.
    from transformers.cli.serving import utils

    for model_types, tmpl in utils._RESPONSE_TEMPLATE_FALLBACKS.items():
        if "qwen2" in model_types:
            return tmpl
    raise RuntimeError("this transformers version has no response template for qwen2")


def apply_serving_template(tokenizer: Any, model_type: str) -> None:
    """Make `tokenizer` render and parse exactly what we train on (call before `save_pretrained`)."""
    tokenizer.chat_template = chat_template.template()
    if model_type not in QWEN_MODEL_TYPES:
        tokenizer.response_template = _qwen_response_template()


def servable_copy(model_dir: str | Path, dest: str | Path) -> Path:
    """A copy of `model_dir` whose tokenizer carries our template (and, for non-Qwen models, the
    response template `transformers serve` parses calls with). Weights are hard-linked when possible;
    the source directory is never written to. The template is also in `dest / CHAT_TEMPLATE_FILE`,
    for vLLM's `--chat-template`."""
    from transformers import AutoConfig, AutoTokenizer

    src, dest = Path(model_dir), Path(dest)
    shutil.copytree(src, dest, copy_function=_link_or_copy, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(src)
    apply_serving_template(tokenizer, AutoConfig.from_pretrained(src).model_type)
    tokenizer.save_pretrained(dest)
    # save_pretrained writes it there today; written here too so vLLM's flag never depends on that.
    (dest / CHAT_TEMPLATE_FILE).write_text(chat_template.template(), encoding="utf-8")
    return dest


def _link_or_copy(src: str, dst: str) -> str:
    if os.path.lexists(dst):  # a file left by an earlier copy may be a link to `src` itself
        os.unlink(dst)
    if src.endswith(WEIGHT_SUFFIXES):
        try:
            os.link(src, dst)
            return dst
        except OSError:
            pass
    shutil.copy2(src, dst)
    return dst
