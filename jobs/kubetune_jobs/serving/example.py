"""The request a local server prints once it is up (`kubetune serve`, `kubetune-job serve`): one chat turn
offering one tool, ready to paste, so the first thing a user sees is a tool call come back parsed."""

from __future__ import annotations

_CURL = """curl -s {base}/chat/completions -H 'Content-Type: application/json'{auth} -d '{{
  "model": "{model}",
  "messages": [{{"role": "user", "content": "What is the weather in Lisbon today?"}}],
  "tools": [{{"type": "function", "function": {{"name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {{"type": "object", "properties": {{"location": {{"type": "string"}}}},
                   "required": ["location"]}}}}}}]
}}'"""


def curl(base_url: str, model: str, *, api_key_env: str | None = None) -> str:
    """The command; with `api_key_env`, it sends `Authorization: Bearer $<that variable>`."""
    auth = f' -H "Authorization: Bearer ${api_key_env}"' if api_key_env else ""
    return _CURL.format(base=base_url, model=model, auth=auth)
