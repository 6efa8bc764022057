"""Helpers the tests share beyond fixtures: vLLM's own hermes parser as a reference, and vLLM servers."""
