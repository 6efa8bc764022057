"""Run inside vLLM's venv: vLLM's hermes tool parser on raw model outputs, as its server applies it.

    <vllm venv>/bin/python hermes_reference.py TOKENIZER_DIR IN.json OUT.json

IN.json is a list of texts; OUT.json gets, per text, `extract` (what `Hermes2ProToolParser.
extract_tool_calls` returns) and `served` (what the chat completions endpoint puts in the message:
the serving layer's parser with `--enable-auto-tool-choice --tool-call-parser hermes`, tool_choice
auto). Results go to a file because vLLM logs to stdout. Standard library and vLLM only: this runs
with vLLM's transformers, not the project's.
"""

from __future__ import annotations

import json
import sys

from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.parser import ParserManager
from vllm.tokenizers import get_tokenizer
from vllm.tool_parsers.hermes_tool_parser import Hermes2ProToolParser

# Tools only make the request one with tool calling enabled; non-streaming parsing does not read them.
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}}}}]


def main(tokenizer_dir: str, src: str, dest: str) -> None:
    texts = json.loads(open(src, encoding="utf-8").read())
    tokenizer = get_tokenizer(tokenizer_dir)
    parser_cls = ParserManager.get_parser(tool_parser_name="hermes", enable_auto_tools=True, tokenizer=tokenizer)
    assert parser_cls is not None and parser_cls.tool_parser_cls is Hermes2ProToolParser, parser_cls
    request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], tools=TOOLS)
    assert request.tool_choice == "auto", request.tool_choice
    out = []
    for text in texts:
        info = Hermes2ProToolParser(tokenizer).extract_tool_calls(text, request)
        # A parser per request, as the server makes one (they hold streaming state).
        _, content, calls = parser_cls(tokenizer, request.tools).parse(text, request, enable_auto_tools=True)
        out.append({
            "extract": {"tools_called": info.tools_called, "content": info.content,
                        "calls": [{"name": c.function.name, "arguments": c.function.arguments}
                                  for c in info.tool_calls]},
            "served": {"content": content,
                       "tool_calls": None if calls is None else [{"name": c.name, "arguments": c.arguments}
                                                                 for c in calls]},
        })
    with open(dest, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
