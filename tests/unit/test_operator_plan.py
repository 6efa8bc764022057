"""The pure plan: order, exact command lines (parsed by the jobs' own CLI), chaining, and done-detection."""

from __future__ import annotations

import json
from pathlib import Path

from test_operator_api import EXAMPLE, minimal

from kubetune_jobs.cli import build_parser
from kubetune_jobs.contract import layout
from kubetune_jobs.evaluate import suites
from kubetune_jobs.storage import location
from kubetune_operator import naming
from kubetune_operator.finetunerun import api, validation
from kubetune_operator.finetunerun.plan import build_plan, step_done


def reference() -> api.FineTuneRunSpec:
    return api.RESOURCE.load_manifest(EXAMPLE).spec


def test_order_of_the_reference_run() -> None:
    steps = build_plan("ref", "ml", reference(), "s3://kubetune")
    assert [s.name for s in steps] == ["prepare-chat", "prepare-tools", "eval-base", "train-chat", "eval-chat",
                                       "train-tools", "eval-tools"]
    assert [s.kind for s in steps] == ["prepare", "prepare", "evaluate", "train", "evaluate", "train", "evaluate"]
    assert [s.gpu for s in steps] == [False, False, True, True, True, True, True]


def test_every_command_line_parses_with_the_jobs_cli() -> None:
    parser = build_parser()
    for spec in (reference(), api.RESOURCE.parse_spec(minimal())):
        for step in build_plan("ref", "ml", spec, "s3://kubetune"):
            args = parser.parse_args(list(step.args))
            assert args.command == step.kind


def test_stages_chain_through_merged_models_and_layout() -> None:
    spec = reference()
    steps = {s.name: build_parser().parse_args(list(s.args)) for s in build_plan("ref", "ml", spec, "s3://b")}
    run = layout.RunLayout.of("s3://b", "ml", "ref")
    assert run.root == "s3://b/ml/ref"
    assert steps["prepare-chat"].output == "s3://b/ml/ref/data/chat"
    assert steps["train-chat"].model == "Qwen/Qwen2.5-3B"
    assert steps["train-chat"].output == run.stage("chat") == "s3://b/ml/ref/stages/chat"
    assert steps["train-tools"].model == run.merged("chat") == "s3://b/ml/ref/stages/chat/merged"
    assert steps["train-tools"].data == run.data("tools")
    assert steps["eval-tools"].local_model == run.merged("tools")
    assert steps["eval-tools"].output == "s3://b/ml/ref/eval/tools"
    assert steps["eval-base"].local_model == "Qwen/Qwen2.5-3B"
    assert steps["eval-base"].suite == api.REFERENCE_SUITES
    assert steps["train-tools"].run_name == "ref" and steps["train-tools"].stage_name == "tools"
    assert steps["eval-chat"].model_label == "chat"
    t = steps["train-chat"]
    assert (t.lora_r, t.lora_alpha, t.batch_size, t.grad_accum, t.learning_rate, t.load_in_4bit, t.precision) == (
        16, 16, 4, 4, 2e-4, True, "bf16")
    prep = steps["prepare-tools"]
    assert (prep.format, prep.max_samples, prep.no_call_fraction, prep.turns_per_row) == ("xlam", 60000, 0.1, 1)
    assert prep.no_call_source == "HuggingFaceH4/ultrachat_200k"


def test_options_change_the_plan() -> None:
    raw = minimal()
    raw["evaluation"] = {"evaluateBase": False, "evaluateEveryStage": False,
                         "suites": [{"name": "heldout", "limit": 5}, {"name": "chat", "limit": 9}]}
    raw["pushgateway"] = "http://pgw:9091"
    raw["resources"] = {"gpus": 0}
    raw["stages"][1]["training"] = {"maxSteps": 3, "loadIn4bit": False, "seed": 7}
    raw["stages"][1]["dataset"]["turnsPerRow"] = 4
    steps = build_plan("r", "default", api.RESOURCE.parse_spec(raw), "/tmp/out")
    assert [s.name for s in steps] == ["prepare-chat", "prepare-tools", "train-chat", "train-tools", "eval-tools"]
    assert not any(s.gpu for s in steps)
    parsed = {s.name: build_parser().parse_args(list(s.args)) for s in steps}
    assert parsed["prepare-tools"].turns_per_row == 4
    evaluate = parsed["eval-tools"]
    # Each suite keeps its own limit, as the job reads them.
    assert suites.validate(evaluate.suite, evaluate.limit) == {"heldout": 5, "chat": 9}
    assert evaluate.pushgateway == "http://pgw:9091"
    assert parsed["train-tools"].max_steps == 3 and parsed["train-tools"].load_in_4bit is False
    assert parsed["train-chat"].max_steps == -1 and parsed["train-chat"].load_in_4bit is True
    assert (parsed["train-chat"].seed, parsed["train-tools"].seed) == (42, 7)
    assert parsed["train-chat"].pushgateway == "http://pgw:9091"
    raw["evaluation"]["suites"] = []
    assert all(s.kind != "evaluate" for s in build_plan("r", "default", api.RESOURCE.parse_spec(raw), "/tmp/out"))


def test_lora_top_layers_reach_every_train_step_and_only_when_set() -> None:
    unset = {s.name: s for s in build_plan("r", "ns", minimal(), "/tmp/out")}
    # Left out when unset, so the steps (and fingerprints) of runs made before the field stay as they were.
    assert not any("--lora-top-layers" in s.args for s in unset.values())
    raw = minimal()
    raw["lora"] = {"topLayers": 8}
    steps = {s.name: s for s in build_plan("r", "ns", api.RESOURCE.parse_spec(raw), "/tmp/out")}
    for name in ("train-chat", "train-tools"):
        assert build_parser().parse_args(list(steps[name].args)).lora_top_layers == 8
        assert steps[name].fingerprint != unset[name].fingerprint


def test_plan_is_deterministic_and_accepts_a_wire_dict() -> None:
    a = build_plan("r", "ns", minimal(), "s3://b")
    b = build_plan("r", "ns", api.RESOURCE.parse_spec(minimal()), "s3://b")
    assert a == b


def test_job_names_are_deterministic_dns_labels() -> None:
    assert naming.job_name("ref", "train-chat") == "ref-train-chat"
    long = naming.job_name("x" * 60, "eval-tools")
    assert len(long) <= 63 and long == naming.job_name("x" * 60, "eval-tools")
    assert long != naming.job_name("x" * 60, "eval-chat")
    assert naming.dns_label("Run_Name.v2") == "run-name-v2"


def test_step_done_needs_verified_outputs(tmp_path: Path) -> None:
    steps = {s.name: s for s in build_plan("r", "ns", minimal(), str(tmp_path))}
    run = layout.RunLayout.of(str(tmp_path), "ns", "r")
    prep, train, ev = steps["prepare-chat"], steps["train-chat"], steps["eval-chat"]
    assert not any(step_done(s, location) for s in (prep, train, ev))

    data = Path(run.data("chat"))
    data.mkdir(parents=True)
    (data / "stats.json").write_text(json.dumps({"rows": 3, "step_fingerprint": prep.fingerprint}))
    assert not step_done(prep, location), "stats.json without a content hash does not prove the data"
    stats = {"content_hash": "ab", "files": {"train.jsonl": "x"}, "step_fingerprint": prep.fingerprint}
    (data / "stats.json").write_text(json.dumps(stats))
    assert not step_done(prep, location), "a file stats.json vouches for is missing"
    (data / "train.jsonl").write_text("{}\n")
    assert step_done(prep, location)
    # The same files, made for another spec or another run (another fingerprint), are not this step's.
    for other in ({**stats, "step_fingerprint": "0" * 32}, {k: v for k, v in stats.items() if k != "step_fingerprint"}):
        (data / "stats.json").write_text(json.dumps(other))
        assert not step_done(prep, location)

    Path(run.adapter("chat")).mkdir(parents=True)
    assert not step_done(train, location)
    Path(run.merged("chat")).mkdir(parents=True)
    (Path(run.merged("chat")) / "_COMPLETE").write_text("{}")
    progress = Path(run.progress("chat"))
    progress.write_text(json.dumps({"state": "succeeded", "fingerprint": train.fingerprint}))
    assert step_done(train, location)
    progress.write_text(json.dumps({"state": "succeeded", "fingerprint": prep.fingerprint}))
    assert not step_done(train, location), "a merged model trained for another spec is not this step's"
    progress.write_text(json.dumps({"state": "running", "fingerprint": train.fingerprint}))
    assert not step_done(train, location)

    Path(run.eval("chat")).mkdir(parents=True)
    Path(run.report("chat")).write_text(json.dumps({"complete": False, "suites": {}, "fingerprint": ev.fingerprint}))
    assert not step_done(ev, location), "a partial report is not done"
    Path(run.report("chat")).write_text(json.dumps({"complete": True, "suites": {}, "fingerprint": ev.fingerprint}))
    assert step_done(ev, location)
    Path(run.report("chat")).write_text(json.dumps({"complete": True, "suites": {}}))
    assert not step_done(ev, location), "a report of unknown origin is not this step's"


def test_only_a_last_stage_nothing_evaluates_may_publish_its_adapter_alone() -> None:
    def problems(**where: dict) -> list[str]:
        raw = minimal()
        for path, value in where.items():
            node = raw
            *parents, last = path.split("__")
            for p in parents:
                node = node[int(p)] if p.isdigit() else node[p]
            node[last] = value
        return validation.problems(api.RESOURCE.parse_spec(raw))

    [early] = problems(stages__0__training={"merge": False}, evaluation={"suites": []})
    assert early.startswith("spec.stages[0].training.merge: false, but stage 'tools' trains from")
    [evaluated] = problems(stages__1__training={"merge": False})
    assert evaluated.startswith("spec.stages[1].training.merge: false, but stage 'tools' is evaluated")
    assert [p.split(":")[0] for p in problems(training={"merge": False})] == ["spec.training.merge"] * 2

    raw = minimal()
    raw["stages"][1]["training"] = {"merge": False}
    raw["evaluation"] = {"suites": []}
    spec = api.RESOURCE.parse_spec(raw)
    assert validation.problems(spec) == []
    steps = {s.name: s for s in build_plan("r", "ns", spec, "s3://b")}
    run = layout.RunLayout.of("s3://b", "ns", "r")
    assert steps["train-tools"].outputs == (f"{run.adapter('tools')}/_COMPLETE",)
    assert steps["train-chat"].outputs == (f"{run.merged('chat')}/_COMPLETE",)
    assert build_parser().parse_args(list(steps["train-tools"].args)).merge is False
