"""The FineTuneRun models: the reference manifest parses with the reference defaults, and a catalogue of
invalid specs is rejected with a message naming the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from kubetune_operator.finetunerun import api, validation

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests" / "examples" / "qwen2.5-3b-function-calling.yaml"


def minimal() -> dict:
    return {"stages": [{"name": "chat", "dataset": {"source": "HuggingFaceH4/ultrachat_200k", "format": "ultrachat"}},
                       {"name": "tools", "dataset": {"source": "Salesforce/xlam-function-calling-60k",
                                                     "format": "xlam", "noCallSource": "HuggingFaceH4/ultrachat_200k"}}]}


def test_reference_manifest_is_the_reference_run() -> None:
    run = api.load_manifest(EXAMPLE)
    s = run.spec
    assert s.base_model == "Qwen/Qwen2.5-3B"
    assert [st.name for st in s.stages] == ["chat", "tools"]
    chat, tools = s.stages
    assert (chat.dataset.source, chat.dataset.format, chat.dataset.split, chat.dataset.max_samples) == (
        "HuggingFaceH4/ultrachat_200k", "ultrachat", "train_sft", 50000)
    assert (tools.dataset.source, tools.dataset.format, tools.dataset.max_samples) == (
        "Salesforce/xlam-function-calling-60k", "xlam", 60000)
    assert tools.dataset.no_call_source == "HuggingFaceH4/ultrachat_200k" and tools.dataset.no_call_fraction == 0.1
    assert (s.lora.r, s.lora.alpha, s.lora.dropout) == (16, 16, 0.0)
    assert s.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    t = s.training
    assert (t.batch_size, t.grad_accum, t.learning_rate, t.epochs, t.precision, t.load_in_4bit) == (
        4, 4, 2e-4, 1.0, "bf16", True)
    assert [x.name for x in s.evaluation.suites] == api.REFERENCE_SUITES
    assert validation.problems(s) == []


def test_defaults_are_the_reference_run() -> None:
    """A spec naming only its stages gets every reference default; the example only spells them out."""
    example = api.load_manifest(EXAMPLE).spec
    spec = api.parse_spec(minimal())
    for field in ("base_model", "lora", "training", "evaluation"):
        assert getattr(spec, field) == getattr(example, field), field


def test_every_field_has_a_description() -> None:
    missing = []

    def walk(model: type, path: str) -> None:
        for name, info in model.model_fields.items():
            if not info.description:
                missing.append(f"{path}.{name}")
            for sub in getattr(info.annotation, "__args__", ()) + (info.annotation,):
                inner = getattr(sub, "__args__", (sub,))
                for t in (sub, *inner):
                    if isinstance(t, type) and issubclass(t, api._Model) and t is not model:
                        walk(t, f"{path}.{name}")

    walk(api.FineTuneRunSpec, "spec")
    walk(api.FineTuneRunStatus, "status")
    assert missing == []


def test_stage_overrides_apply_only_to_their_stage() -> None:
    raw = minimal()
    raw["stages"][1]["training"] = {"maxSteps": 7, "learningRate": 1e-4}
    spec = api.parse_spec(raw)
    assert spec.stage_training(spec.stages[0]).max_steps == -1
    tools = spec.stage_training(spec.stages[1])
    assert (tools.max_steps, tools.learning_rate, tools.batch_size) == (7, 1e-4, 4)


def _set(path: str, value: object):
    def mutate(spec: dict) -> None:
        node = spec
        parts = path.replace("]", "").replace("[", ".").split(".")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node.setdefault(p, {})
        last = parts[-1]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


# (mutation, the field the message must name, a word the message must contain)
INVALID = [
    (_set("stages", []), "spec.stages", "at least 1"),
    (_set("stages.1.name", "chat"), "spec.stages", "used twice"),
    (_set("stages.0.name", "Chat_Stage"), "spec.stages[0].name", "pattern"),
    (_set("stages.1.dataset.format", "sharegpt"), "spec.stages[1].dataset.format", "ultrachat"),
    (_set("stages.0.dataset.source", ""), "spec.stages[0].dataset.source", "at least 1"),
    (_set("stages.0.dataset.maxSamples", 0), "spec.stages[0].dataset.maxSamples", "greater than"),
    (_set("stages.1.dataset.noCallFraction", 1.5), "spec.stages[1].dataset.noCallFraction", "less than"),
    (_set("stages.0.dataset.evalFraction", 0), "spec.stages[0].dataset.evalFraction", "greater than"),
    (_set("stages.0.training", {"batchSize": 0}), "spec.stages[0].training.batchSize", "greater than"),
    (_set("lora.r", 0), "spec.lora.r", "greater than"),
    (_set("lora.targetModules", []), "spec.lora.targetModules", "at least 1"),
    (_set("training.learningRate", -1), "spec.training.learningRate", "greater than"),
    (_set("training.precision", "int8"), "spec.training.precision", "bf16"),
    (_set("training.scheduler", "exponential"), "spec.training.scheduler", "cosine"),
    (_set("training.lernRate", 1e-4), "spec.training.lernRate", "Extra inputs"),
    (_set("resources.gpus", -1), "spec.resources.gpus", "greater than"),
    (_set("resources.memory", "lots"), "spec.resources.memory", "pattern"),
    (_set("resources.kueueQueue", "Team Queue"), "spec.resources.kueueQueue", "pattern"),
    (_set("resources.tolerations", [{"operator": "Maybe"}]), "spec.resources.tolerations[0].operator", "Exists"),
    (_set("cleanupPolicy", "Orphan"), "spec.cleanupPolicy", "Retain"),
    (_set("storage.bucket", "My_Bucket"), "spec.storage.bucket", "pattern"),
    (_set("evaluation.suites", [{"name": "mmlu"}]), "spec.evaluation.suites[0].name", "pattern"),
    (_set("evaluation.gates", {"minAccuracy": {"heldout": 1.5}}), "spec.evaluation.gates.minAccuracy.heldout",
     "less than"),
    # semantic checks (validation.problems), the operator reports them as Succeeded=False/InvalidSpec
    (_set("evaluation.suites", [{"name": "bfcl-simple_cobol"}]), "spec.evaluation.suites[0].name",
     "unknown BFCL category"),
    (_set("evaluation.suites", [{"name": "heldout"}, {"name": "heldout"}]), "spec.evaluation.suites[1].name",
     "twice"),
    (_set("evaluation", {"suites": [{"name": "heldout"}], "gates": {"minAccuracy": {"chat": 0.5}}}),
     "spec.evaluation.gates.minAccuracy.chat", "not one of"),
    (_set("stages.0.dataset.noCallSource", "x"), "spec.stages[0].dataset.noCallSource", "only the xlam"),
    (_set("stages.1.dataset.noCallSource", None), "spec.stages[1].dataset.noCallSource", "required"),
    (_set("stages.0.dataset.turnsPerRow", 4), "spec.stages[0].dataset.turnsPerRow", "only the xlam"),
    (_set("storage.endpoint", "http://minio:9000"), "spec.storage.credentialsSecret", "required"),
]


def rejection(raw: dict) -> str:
    try:
        spec = api.parse_spec(raw)
    except api.SpecError as exc:
        return str(exc)
    return "; ".join(validation.problems(spec))


@pytest.mark.parametrize("mutate, field, word", INVALID, ids=[f"{i}-{f}" for i, (_, f, _) in enumerate(INVALID)])
def test_invalid_spec_is_rejected_naming_the_field(mutate, field, word) -> None:
    raw = copy.deepcopy(minimal())
    mutate(raw)
    message = rejection(raw)
    assert message, "the spec was accepted"
    assert message.startswith(field + ":") or f"; {field}:" in message, message
    assert word.lower() in message.lower(), message


def test_catalogue_is_large_enough_and_valid_base_passes() -> None:
    assert len(INVALID) >= 15
    assert rejection(minimal()) == ""


def test_manifest_errors_name_the_file_problem(tmp_path: Path) -> None:
    bad = tmp_path / "run.yaml"
    bad.write_text("apiVersion: kubetune.io/v1alpha1\nkind: FineTuneRun\nmetadata: {name: r}\n"
                   "spec: {stages: [{name: a, dataset: {source: x, format: csv}}]}\n")
    with pytest.raises(api.SpecError, match=r"spec\.stages\[0\]\.dataset\.format"):
        api.load_manifest(bad)
    other = tmp_path / "other.yaml"
    other.write_text("kind: ConfigMap\n")
    with pytest.raises(api.SpecError, match="kind: 'ConfigMap' is not one of FineTuneRun, ModelServe"):
        api.load_manifest(other)
    serve_only = tmp_path / "serve.yaml"
    serve_only.write_text("apiVersion: kubetune.io/v1alpha1\nkind: ModelServe\nmetadata: {name: s}\n"
                          "spec: {model: {hub: Qwen/Qwen2.5-3B-Instruct}}\n")
    with pytest.raises(api.SpecError, match="exactly one FineTuneRun document, found 0"):
        api.load_manifest(serve_only)
