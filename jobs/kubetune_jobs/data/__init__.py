"""The `prepare` job: source rows (UltraChat-style chat, xlam-style tool calls, our bundled sets) become
training rows in the chat template's format, with no-call examples mixed in; a bad row is dropped and
counted, never fatal.

`sources` where rows come from · `strict_json` what a row may hold · `schema` tool schemas and argument
checks · `convert` one converter per source format · `conversations` multi-turn rows sharing one tools
block · `prepare` the job itself (train.jsonl, eval.jsonl, stats.json).
"""
