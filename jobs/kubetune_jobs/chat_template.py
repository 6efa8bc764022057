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


# vLLM's hermes pattern: a closed block, or an open one running to the end of the text.
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)
TOOL_CALL_START = "<tool_call>"
TOOL_CALL_END = "</tool_call>"


@dataclass
class ParsedOutput:
    """What a client of vLLM (`--tool-call-parser hermes`) receives for a model's raw text.

    `calls` are its `tool_calls`, each `{"name": str, "arguments": <the JSON value hermes found>}` (not
    necessarily an object: see `wire_calls`); `content` its message content ("" for none); `errors`
    why the call markup gave no calls at all (then `content` is the whole text, as hermes returns it).
    """

    content: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def wire_calls(self) -> list[dict[str, Any]]:
        """The calls as the server sends them: `arguments` is hermes' `json.dumps` of what it found."""
        return [{"type": "function", "function": {
            "name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}} for c in self.calls]


def parse_tool_calls(text: str) -> ParsedOutput:
    """Read `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks exactly as vLLM's hermes
    parser (vllm 0.32, `Hermes2ProToolParser.extract_tool_calls` behind its serving layer) does.

    `text` is generated text as a server has it; a server stops at `<|im_end|>`, so whatever follows
    one is dropped first. Hermes is stricter and blunter than one might expect, and we agree with it,
    because it is what a client of the served model gets (tests/integration/test_hermes_agreement.py
    checks every case against the real parser):
      * every block must be JSON (Python's `json`, so `NaN` passes) holding an object with a string
        `name` and an `arguments` key; if any block fails, the whole output has no calls and its
        content is the entire text, markup included;
      * `arguments` is passed on as found: a JSON string stays a string (a client decoding it gets a
        string, not an object), `null` and lists stay what they are;
      * an unterminated block runs to the end of the text and is tried like a closed one, even if
        cut off; `<tool_call></tool_call>` is not JSON; nested or stray tags are just text in a body;
      * content is the text before the first `<tool_call>` only (text between and after calls is
        dropped), and none at all when that is only whitespace; without `<tool_call>` it is the whole
        text, untouched.
    """
    text = text.split(END_OF_TURN, 1)[0]
    if TOOL_CALL_START not in text:
        return ParsedOutput(content=text)
    calls: list[dict[str, Any]] = []
    errors: list[str] = []
    for match in _TOOL_CALL.finditer(text):
        body = match.group(1) if match.group(1) is not None else match.group(2)
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as exc:
            errors.append(f"tool call is not valid JSON ({exc.msg}): {body.strip()[:80]!r}")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            errors.append(f"tool call has no string 'name': {body.strip()[:80]!r}")
        elif "arguments" not in obj:
            errors.append(f"tool call {obj['name']!r} has no 'arguments'")
        else:
            calls.append({"name": obj["name"], "arguments": obj["arguments"]})
    if errors:
        return ParsedOutput(content=text, errors=errors)
    before = text[:text.index(TOOL_CALL_START)]
    return ParsedOutput(content=before if before.strip() else "", calls=calls)


def decode_call(obj: Any) -> tuple[dict[str, Any] | None, str | None]:
    """One call as an OpenAI-compatible API sends it (`{"name", "arguments"}`, `arguments` a JSON string
    of an object, or already an object in our predictions files). Returns the plain call with object
    arguments, or why it is not one (a string that decodes to a string is not an object)."""
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
