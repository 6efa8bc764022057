"""The jobs<->operator contract: command lines round-trip through the jobs' own parser, the defaults of the
CRD are the jobs' defaults, what a job writes the operator reads as the same record, and every suite the
operator admits is one evaluate can load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_operator_api import EXAMPLE, minimal

from kubetune_jobs import cli, storage
from kubetune_jobs.contract import records, suites
from kubetune_jobs.contract.options import JOBS, EvaluateOptions, PrepareOptions, TrainOptions, defaults
from kubetune_jobs.contract.store import StoreConfigError, normalize_endpoint, resolve
from kubetune_jobs.evaluate import suites as evaluate_suites
from kubetune_jobs.train.progress import Progress
from kubetune_operator.finetunerun import api, results, validation
from kubetune_operator.finetunerun.plan import build_plan


@pytest.mark.parametrize("spec", [minimal(), None], ids=["minimal", "reference"])
def test_every_planned_command_line_parses_back_to_its_options(spec) -> None:
    spec = api.parse_spec(spec) if spec else api.load_manifest(EXAMPLE).spec
    parser = cli.build_parser()
    for step in build_plan("r", "ns", spec, "s3://b", uid="u"):
        options = JOBS[step.kind].from_namespace(parser.parse_args(list(step.args)))
        assert options.command_line() == list(step.args)
        assert options.fingerprint == step.fingerprint


def test_options_round_trip_every_kind_of_field() -> None:
    opts = TrainOptions(model="m", data="d", output="o", target_modules=("q_proj", "v_proj"), load_in_4bit=False,
                        gradient_checkpointing=True, merge=False, pushgateway="http://pgw:9091")
    assert TrainOptions.parse(opts.argv()) == opts
    ev = EvaluateOptions(suite=("heldout:5", "seed-tools"), data=("a", "b"), endpoint="http://x/v1", model="m")
    assert EvaluateOptions.parse(ev.argv()) == ev
    compare = EvaluateOptions(compare=("a/report.json", "b/report.json"))
    assert EvaluateOptions.parse(compare.argv()).compare == compare.compare


def test_the_fingerprint_ignores_what_does_not_shape_the_outputs() -> None:
    raw = minimal()
    base = {s.name: s.fingerprint for s in build_plan("r", "ns", raw, "s3://b", uid="u")}
    watched = {s.name: s.fingerprint for s in build_plan("r", "ns", raw, "s3://b", uid="u", pushgateway="http://p")}
    assert watched == base, "a Pushgateway (a scheduling field) never makes finished work count as undone"
    other_run = {s.name: s.fingerprint for s in build_plan("r", "ns", raw, "s3://b", uid="u2")}
    assert all(other_run[k] != v for k, v in base.items()), "a recreated run (new uid) reuses nothing"
    raw["stages"][1]["training"] = {"learningRate": 1e-3}
    edited = {s.name: s.fingerprint for s in build_plan("r", "ns", raw, "s3://b", uid="u")}
    changed = sorted(k for k in base if edited[k] != base[k])
    # The tools stage trains differently; what reads its model follows; the chat stage and data do not change.
    assert changed == ["eval-tools", "train-tools"]


def test_crd_defaults_are_the_jobs_defaults() -> None:
    spec = api.parse_spec(minimal())
    train, prepare, evaluate = defaults(TrainOptions), defaults(PrepareOptions), defaults(EvaluateOptions)
    hyperparameters = spec.stage_hyperparameters(spec.stages[0])
    assert hyperparameters and hyperparameters == {k: train[k] for k in hyperparameters}
    d = spec.stages[1].dataset
    assert (d.no_call_fraction, d.turns_per_row, d.eval_fraction) == (
        prepare["no_call_fraction"], prepare["turns_per_row"], prepare["eval_fraction"])
    assert spec.evaluation.max_new_tokens == evaluate["max_new_tokens"]


def test_what_train_writes_the_operator_reads(tmp_path: Path) -> None:
    progress = Progress(storage.location(tmp_path), None, "r", "tools", fingerprint="f" * 32)
    progress.update(state="running", step=3, total=9, loss=0.5, tokens_per_second=100.0,
                    checkpoint="s3://b/ns/r/stages/tools/checkpoints/step-3")
    record = records.read(records.Progress, (tmp_path / "progress.json").read_bytes())
    assert record is not None and (record.step, record.total, record.fingerprint) == (3, 9, "f" * 32)
    assert results.stage_progress(record)["checkpoint"].endswith("step-3")
    with pytest.raises(KeyError, match="global_step"):
        progress.update(global_step=4)  # a writer cannot invent a key the readers do not know


def test_what_evaluate_writes_the_operator_reads(tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    items = evaluate_suites.load("seed-tools", limit=3)
    preds.write_text("".join(json.dumps({"id": it.id, "text": "no idea"}) + "\n" for it in items))
    out = tmp_path / "report"
    assert cli.main(["evaluate", "--suite", "seed-tools:3", "--predictions", str(preds), "--output", str(out),
                     "--fingerprint", "abc"]) == 0
    report = records.read(records.ReportSummary, (out / "report.json").read_bytes())
    assert report is not None and report.complete and report.fingerprint == "abc"
    found = results.suite_results(report)
    assert [r["suite"] for r in found] == ["seed-tools"] and 0 <= found[0]["accuracy"] <= 1


def test_every_suite_the_operator_admits_is_one_evaluate_can_load(tmp_path: Path) -> None:
    raw = minimal()
    raw["evaluation"] = {"suites": [{"name": s} for s in suites.KNOWN]}
    assert validation.problems(api.parse_spec(raw)) == []
    data = tmp_path / "data"
    data.mkdir()
    (data / "eval.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                              {"role": "assistant", "content": "hello"}],
                                                 "tools": []}) + "\n")
    for name in suites.KNOWN:
        assert evaluate_suites.validate([name]) == {name: None}
        assert evaluate_suites.load(name, data=str(data), limit=1) is not None, name
    refused = minimal()
    refused["evaluation"] = {"suites": [{"name": "bfcl-live_relevance"}]}  # a BFCL file evaluate cannot score
    assert validation.problems(api.parse_spec(refused))


def test_one_resolution_of_the_store_for_every_caller() -> None:
    assert normalize_endpoint("minio.store:9000", secure=True) == "https://minio.store:9000"
    assert normalize_endpoint("minio.store:9000") == "http://minio.store:9000"
    for bad in ("ftp://x", "http://user:pw@x:9000", "http://x:9000/path", "://"):
        with pytest.raises(StoreConfigError):
            normalize_endpoint(bad)
    env = {"KUBETUNE_S3_ENDPOINT": "http://env:9000", "AWS_ACCESS_KEY_ID": "ambient", "AWS_SECRET_ACCESS_KEY": "x"}
    assert resolve(environ=env).access_key == "ambient"
    mine = resolve("s:9000", secure=True, credentials={"AWS_ACCESS_KEY_ID": "run"}, environ=env)
    assert (mine.endpoint, mine.access_key, mine.secret_key) == ("https://s:9000", "run", None)
    assert resolve("s:9000", credentials={}, environ=env).access_key is None, "no ambient keys when told so"
    assert "ambient" not in repr(resolve(environ=env)) and resolve(environ={}) is None
    assert dataclasses.is_dataclass(resolve(environ=env))


@pytest.mark.parametrize("command", sorted(JOBS))
def test_every_job_command_explains_its_flags(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`kubetune-job COMMAND --help` prints every flag (a mutually exclusive group once made it crash)."""
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for field in dataclasses.fields(JOBS[command]):
        assert "--" + field.name.replace("_", "-") in shown, field.name
