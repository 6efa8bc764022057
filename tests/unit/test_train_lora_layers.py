"""`lora.topLayers` / `--lora-top-layers`: adapters on the last N transformer layers only, and no backward pass
below the lowest of them (what makes a step cheaper)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kubetune_jobs.contract.options import TrainOptions
from kubetune_jobs.precision import Precision
from kubetune_jobs.train import backend


def test_top_layers_counts_from_the_last_layer() -> None:
    assert backend.top_layers(3, SimpleNamespace(num_hidden_layers=30)) == [27, 28, 29]
    assert backend.top_layers(30, SimpleNamespace(num_hidden_layers=30)) == list(range(30))
    with pytest.raises(backend.BackendError, match="only 30 layers"):
        backend.top_layers(31, SimpleNamespace(num_hidden_layers=30))
    with pytest.raises(backend.BackendError, match="num_hidden_layers"):
        backend.top_layers(2, SimpleNamespace())


def test_the_flag_is_validated() -> None:
    with pytest.raises(ValueError, match="--lora-top-layers"):
        TrainOptions(model="m", data="d", output="o", lora_top_layers=0).validate()


def _trained_layers(tiny_qwen2: str, top: int | None) -> tuple[set[int], list[bool]]:
    """(layers holding LoRA weights, whether each layer's output took part in the backward graph)."""
    import torch

    cfg = TrainOptions(model=tiny_qwen2, data="d", output="o", backend="trl", load_in_4bit=False,
                       lora_top_layers=top)
    model, _ = backend.load_model(cfg, "trl", tiny_qwen2, Precision("fp32"))
    layers = model.base_model.model.model.layers
    adapted = {i for i, layer in enumerate(layers) for name, _ in layer.named_parameters() if "lora_" in name}
    outputs: list[bool] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: outputs.append(
        (out[0] if isinstance(out, tuple) else out).requires_grad)) for layer in layers]
    ids = torch.tensor([[5, 17, 301, 42, 9]])
    model(input_ids=ids, labels=ids).loss.backward()
    for hook in hooks:
        hook.remove()
    return adapted, outputs


def test_adapters_and_backward_stop_at_the_lowest_adapted_layer(tiny_qwen2: str) -> None:
    every, every_graph = _trained_layers(tiny_qwen2, None)
    assert every == {0, 1} and every_graph == [True, True]
    top, top_graph = _trained_layers(tiny_qwen2, 1)
    # Layer 0 holds no adapter and its output needs no gradient: autograd never goes below layer 1.
    assert top == {1} and top_graph == [False, True]
