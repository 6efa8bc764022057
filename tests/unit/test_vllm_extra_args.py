"""`spec.vllm.extraArgs` cannot touch a setting the operator owns, however it is spelled: the validation every
command runs (`modelserve.validation.problems`) reads the argv the way vLLM's parser does (through the table
generated from it; tests/integration/test_vllm_args.py checks that reading against vLLM itself) and names
the item. `kubetune validate` on the same cases: tests/fixtures/invalid-manifests/ms-extra-args-*.yaml."""

from __future__ import annotations

import pytest

from kubetune_operator.modelserve import api, validation, vllm, vllm_args

HUB = {"hub": "Qwen/Qwen2.5-3B-Instruct"}
LORA = {"fineTuneRun": {"name": "assistant", "stage": "tools"}, "lora": {"enabled": True}}
SECRET = "sk-not-a-real-key-7f3a"


def problems(extra: list[str], model: dict | None = None, gpus: int = 1) -> list[str]:
    return validation.problems(api.parse_spec({"model": model or HUB, "resources": {"gpus": gpus},
                                               "vllm": {"extraArgs": extra}}))


@pytest.mark.parametrize(("extra", "model", "index", "words"), [
    (["-tp", "4"], None, 0, ["'-tp'", "--tensor-parallel-size", "spec.vllm.tensorParallelSize"]),
    (["--enable-prefix-caching", "-t", "2"], None, 1, ["--tensor-parallel-size"]),
    (["--ho", "0.0.0.0"], None, 0, ["'--ho'", "--host", "set by the operator"]),
    (["--dt", "float16"], None, 0, ["--dtype", "spec.vllm.dtype"]),
    (["--gp", "0.99"], None, 0, ["--gpu-memory-utilization", "spec.vllm.gpuMemoryUtilization"]),
    (["--device-memory-utilization", "0.5"], None, 0, ["--gpu-memory-utilization"]),
    (["--no-enable-auto-tool-choice"], None, 0, ["turned off", "spec.vllm.enableAutoToolChoice"]),
    (["--no-enable-a"], None, 0, ["--enable-auto-tool-choice turned off"]),
    (["--seed", "0", "Qwen/Qwen2.5-7B"], None, 2, ["positional"]),
    (["--uds", "/tmp/s.sock"], None, 0, ["--uds", "set by the operator"]),
    (["--headless"], None, 0, ["set by the operator"]),
    (["other=/etc/adapter"], LORA, 0, ["one more value of --lora-modules"]),
    (["--enforce-eager", "other=/etc/adapter"], LORA, 1, ["positional"]),
    (["--lora-m", "x=/y"], LORA, 0, ["--lora-modules", "set by the operator"]),
    (["--max-lora-r", "8"], LORA, 0, ["spec.model.lora.maxRank"]),
    (["--enable-lora"], None, 0, ["spec.model.lora.enabled"]),
    (["--served-model-name.x", "y"], None, 0, ["--served-model-name"]),
    (["--max_model_len=8192"], None, 0, ["spec.vllm.maxModelLen"]),
    (["--seed", "1", "--seed", "2"], None, 2, ["also set by spec.vllm.extraArgs[0]"]),
    (["--config=/x.yaml"], None, 0, ["reads flags from a file"]),
    (["--help=all"], None, 0, ["exits"]),
    (["-h"], None, 0, ["exits"]),
    (["--enable-prefix-cashing"], None, 0, ["not an option"]),
    (["--d", "1"], None, 0, ["ambiguous"]),
    (["--enforce-eager=1"], None, 0, ["takes no value"]),
    (["--seed"], None, 0, ["needs a value"]),
    (["--", "x"], None, 0, ["`--`"]),
    (["--max-num-seqs 8"], None, 0, ["two items"]),
])
def test_an_item_that_touches_what_vllm_must_not_get_is_refused_naming_it(extra: list[str], model: dict | None,
                                                                           index: int, words: list[str]) -> None:
    found = problems(extra, model)
    mine = [p for p in found if p.startswith(f"spec.vllm.extraArgs[{index}]: ")]
    assert mine, found
    assert all(w in mine[0] for w in words), (mine[0], words)


@pytest.mark.parametrize("extra", [
    ["--api-key", SECRET], ["--api-ke", SECRET], [f"--api-key={SECRET}"], [f"--api_key={SECRET}"],
    ["--hf-token", SECRET], ["--hf-to", SECRET], [SECRET], [f"--api-key.x={SECRET}"], [f"--unknown={SECRET}"],
])
def test_a_secret_in_extra_args_is_refused_and_never_repeated(extra: list[str]) -> None:
    found = problems(extra)
    assert found and "spec.vllm.extraArgs[0]: " in found[0]
    assert SECRET not in " ".join(found)


@pytest.mark.parametrize(("extra", "model"), [
    (["--enable-prefix-caching", "--max-num-batched-tokens", "8192", "--kv-cache-dtype=fp8", "--max_cpu_loras=2",
      "--override-generation-config", '{"temperature": 0}', "-O3"], None),
    (["--seed", "-1", "--enforce-eager"], None),
    (["--compilation-config.mode", "3", "--compilation-config.cudagraph_mode=NONE"], None),
    (["--enforce-eager", "--seed", "0"], LORA),
    (["--middleware", "a.b", "--middleware", "c.d"], None),  # an append flag: each item adds one
])
def test_what_owns_nothing_passes(extra: list[str], model: dict | None) -> None:
    assert problems(extra, model) == []


def test_the_owned_settings_are_what_argv_emits_read_through_vllms_table() -> None:
    """Every setting argv emits, for any spec, is in `settings`, and so refused in extraArgs; and each of its
    flags is an option string of vLLM's parser (the table), not a name only the operator knows."""
    spec = api.parse_spec({"model": LORA, "resources": {"gpus": 2},
                           "vllm": {"maxNumSeqs": 8, "chatTemplate": "{{x}}", "tensorParallelSize": 2}})
    files = vllm.ModelFiles(model="/m", chat_template="/t", adapter="/a")
    emitted = {u.dest for u in vllm_args.read(vllm.argv(spec, "n", files)).uses}
    owned = {vllm_args.dest(s.flag) for s in vllm.settings(spec, "n", files)}
    assert emitted <= owned and len(emitted) >= 15
    for dest in owned:
        flag = vllm_args.long_option(dest)
        assert problems([flag] if vllm_args.option(flag)["nargs"] == 0 else [flag, "1"], LORA), flag


def test_a_table_option_maps_every_spelling_to_one_setting() -> None:
    assert vllm_args.dest("-tp") == vllm_args.dest("--tensor-parallel-size") == "tensor_parallel_size"
    assert vllm_args.option("--no-enable-auto-tool-choice") == {
        "dest": "enable_auto_tool_choice", "nargs": 0, "action": "BooleanOptional", "negates": True}
    assert vllm_args.table()["allow_abbrev"] is True
