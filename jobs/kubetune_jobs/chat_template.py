"""The one chat template: Qwen2.5's tool-calling template, as TRL ships it.

Everything that turns conversations into text goes through here: `prepare` (length checks), `train`
(rendering and assistant-only masks), the exported tokenizer, vLLM's `--chat-template`, and the
evaluator's parser. The `hermes` tool parser in vLLM reads back exactly the `<tool_call>` blocks this
template writes, and `parse_tool_calls` is our implementation of that reading.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

# Qwen2.5's default system prompt, which the template writes when a conversation has none.
DEFAULT_SYSTEM_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# The strings that delimit an assistant turn in the rendered text; `train` and the serving export use them.
ASSISTANT_HEADER = "<|im_start|>assistant\n"
USER_HEADER = "<|im_start|>user\n"
END_OF_TURN = "<|im_end|>"


def _trl_template_dir() -> Path:
    # Located without importing trl: the prepare job and the operator's image must not pay for torch.
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Qwen2.5 chat template comes from the `trl` package, which is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "chat_templates"


@cache
def template(training: bool = False) -> str:
    """The inference template (what vLLM and the exported tokenizer use), or its training variant.

    The training variant is TRL's copy with `{% generation %}` markers around assistant output, which
    is how the assistant-only loss mask is computed; both render identical text.
    """
    name = "qwen2_5_training.jinja" if training else "qwen2_5.jinja"
    return (_trl_template_dir() / name).read_text(encoding="utf-8")


def render(
    row: dict[str, Any],
    *,
    add_generation_prompt: bool = False,
    training: bool = False,
    return_assistant_mask: bool = False,
) -> str | tuple[str, list[tuple[int, int]]]:
    """Render one conversational row (`messages` + optional `tools`) to text with the Qwen2.5 template.

    With `return_assistant_mask`, also returns the character spans `[start, end)` of assistant output
    (the text the model is trained to produce, `<|im_end|>` included).
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    tools = row.get("tools") or None
    rendered, spans = render_jinja_template(
        conversations=[row["messages"]],
        tools=tools,
        chat_template=template(training or return_assistant_mask),
        add_generation_prompt=add_generation_prompt,
        return_assistant_tokens_mask=return_assistant_mask,
    )
    if return_assistant_mask:
        return rendered[0], [tuple(s) for s in spans[0]]
    return rendered[0]


_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)\Z", re.DOTALL)


@dataclass
class ParsedOutput:
    """What a model's raw text says: plain content, tool calls, and the blocks that did not decode."""

    content: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def has_call_markup(self) -> bool:
        return bool(self.calls or self.errors)


def parse_tool_calls(text: str) -> ParsedOutput:
    """Read `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks as vLLM's hermes parser does.

    Calls come back as `{"name": str, "arguments": dict}` in order of appearance. A block that is not
    a JSON object with a string `name` and object `arguments` is reported in `errors`, never guessed at.
    An unterminated final block (generation cut off) is still tried, as hermes does.
    """
    calls: list[dict[str, Any]] = []
    errors: list[str] = []
    for match in _TOOL_CALL.finditer(text):
        body = (match.group(1) if match.group(1) is not None else match.group(2)).strip()
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as exc:
            errors.append(f"tool call is not valid JSON ({exc.msg}): {body[:80]!r}")
            continue
        call, error = decode_call(obj)
        if error:
            errors.append(error)
        else:
            calls.append(call)
    content = _TOOL_CALL.sub("", text).replace(END_OF_TURN, "").strip()
    return ParsedOutput(content=content, calls=calls, errors=errors)


def decode_call(obj: Any) -> tuple[dict[str, Any] | None, str | None]:
    """One `{"name", "arguments"}` object as hermes reads it: `arguments` may be an object or a JSON
    string of one (some models and APIs send strings). Returns the plain call, or why it is not one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None, f"tool call has no string 'name': {str(obj)[:80]!r}"
    args = obj.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            return None, f"arguments of {obj['name']!r} are not valid JSON ({exc.msg})"
    if not isinstance(args, dict):
        return None, f"arguments of {obj['name']!r} are not a JSON object"
    return {"name": obj["name"], "arguments": args}, None


def assistant_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls of an assistant message in TRL's format, as plain `{"name", "arguments"}` dicts."""
    out = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function", call)
        out.append({"name": fn["name"], "arguments": fn["arguments"]})
    return out
