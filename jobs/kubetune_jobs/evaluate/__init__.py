"""The `evaluate` job: function-calling accuracy (BFCL categories, seed-tools, held-out data), irrelevance,
and chat quality, for a model in-process, an OpenAI-compatible endpoint or a file of predictions.

`suites` the items · `bfcl` BFCL's data from its wheel · `targets` what answers them · `checker` BFCL's
AST matching · `report` scoring, aggregates, report files · `judge` the chat suite's pairwise judge ·
`metrics` the pushed gauges · `run` the job itself.
"""
