"""`kubetune-job bench`: a concurrency sweep against an OpenAI-compatible endpoint.

`workload`: the requests (tool-calling chats with the seed tools, plain chat turns).
`client`: streaming requests through the `openai` client, timed chunk by chunk.
`stats`: one concurrency level's figures, as `vllm bench serve` reports them.
`server_counts`: the server's own counters (vLLM's `/metrics`), to check ours against.
`report`: bench.json and the readable table, with the origin document's A6000 figures.
`metrics`: the `kubetune_bench_*` metrics pushed to a Pushgateway.
`run`: the job itself.
"""
