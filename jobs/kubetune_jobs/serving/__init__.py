"""Serving a tuned model over an OpenAI-compatible API, with tool calls.

`template`: what a model directory needs so servers render and parse exactly what we trained on.
`process`: one local HTTP server subprocess (free port, start, wait for health, clean stop).
`vllm_server`: vLLM (the serving engine production uses), from the venv `make vllm-env` builds.
`transformers_server`: `transformers serve`, the fallback where vLLM is not installed.
`run`: the `kubetune-job serve` command.
"""
