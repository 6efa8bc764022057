"""One declaration per hyperparameter (`contract.hyperparams`): the FineTuneRun field, the `kubetune-job train`
flag, the trainer's argument and the fingerprint's rule are derived from it. A parameter that exists only in
this test's declaration reaches all of them; every declared parameter is in the published CRD, in the job's
--help, reaches SFTConfig/LoraConfig where it says so, and can be set per stage from a FineTuneRun."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest
import yaml
from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from test_operator_api import minimal

from kubetune_jobs.contract import hyperparams, options
from kubetune_jobs.contract.options import TrainOptions
from kubetune_operator import crd
from kubetune_operator.finetunerun import api
from kubetune_operator.finetunerun.plan import build_plan

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_CRD = ROOT / "manifests" / "crds" / "kubetune.io_finetuneruns.yaml"
REQUIRED = {"model": "m", "data": "d", "output": "o"}
PLAN = {"grad_accum": 4, "world_size": 1, "global_batch": 16}  # what batch_plan() gives one rank


class WithClipping(hyperparams.TrainingParameters):
    """The training declaration and one parameter that exists only here (SFTConfig's default is 1.0)."""

    max_grad_norm: float = hyperparams.param(0.5, "Gradient clipping norm.", sft="max_grad_norm", gt=0.0, le=10.0)


@dataclass(frozen=True)
@options.declared_flags(hyperparams.LoraParameters, WithClipping)
class ClippedTrain(TrainOptions):
    pass


def sft_config(opts: TrainOptions, tmp_path: Path) -> Any:
    from kubetune_jobs.precision import Precision
    from kubetune_jobs.train import run

    return run._sft_config(opts, tmp_path, Precision("fp32", "test"), "trl", False, PLAN, False)


def words(text: str) -> str:
    return " ".join(text.split())


def test_a_parameter_declared_once_reaches_the_crd_the_flag_the_trainer_and_the_fingerprint(tmp_path: Path) -> None:
    from trl import SFTConfig

    assert "max_grad_norm" not in hyperparams.TrainingParameters.model_fields
    trl_default = next(f.default for f in dataclasses.fields(SFTConfig) if f.name == "max_grad_norm")
    assert "max_grad_norm" not in options.defaults(TrainOptions) and trl_default != 0.5

    # The FineTuneRun field (and its per-stage override), with the declared default, bounds and help.
    spec_model = api.declared_model(WithClipping, "TrainingSpec")
    schema = crd.schema_of(spec_model)["properties"]["maxGradNorm"]
    assert schema == {"default": 0.5, "description": "Gradient clipping norm.", "minimum": 0.0,
                      "exclusiveMinimum": True, "maximum": 10.0, "type": "number"}
    override = crd.schema_of(api.overrides_model(spec_model))["properties"]["maxGradNorm"]
    assert override["nullable"] is True and override["maximum"] == 10.0 and "Gradient clipping" in override["description"]
    with pytest.raises(ValidationError, match="maxGradNorm"):
        spec_model.model_validate({"maxGradNorm": 0.0})
    from_run = api.declared_values(spec_model.model_validate({"maxGradNorm": 0.25}), WithClipping)
    assert from_run["max_grad_norm"] == 0.25

    # The job's flag: in --help, parsed, bounded.
    parser = argparse.ArgumentParser(prog="kubetune-job train")
    ClippedTrain.add_arguments(parser)
    assert "--max-grad-norm MAX_GRAD_NORM Gradient clipping norm." in words(parser.format_help())
    opts = ClippedTrain.parse(["--model", "m", "--data", "d", "--output", "o", "--max-grad-norm", "0.25"])
    assert opts.max_grad_norm == 0.25 and ClippedTrain(**REQUIRED, **from_run) == opts
    opts.validate()
    with pytest.raises(ValueError, match="--max-grad-norm must be greater than 0"):
        ClippedTrain(**REQUIRED, max_grad_norm=0.0).validate()

    # The trainer's argument, default included.
    assert sft_config(opts, tmp_path).max_grad_norm == 0.25
    assert sft_config(ClippedTrain(**REQUIRED), tmp_path).max_grad_norm == 0.5

    # The fingerprint: the new flag at its default leaves finished steps' fingerprints as they were.
    assert ClippedTrain(**REQUIRED).command_line_identity() == TrainOptions(**REQUIRED).command_line_identity()
    assert "--max-grad-norm" in opts.command_line_identity()


def _base(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if type(None) in typing.get_args(tp) else tp


def other_value(info: Any) -> Any:
    """A value of the declared field within its bounds that is not its default."""
    default, tp = info.get_default(), _base(info.annotation)
    if typing.get_origin(tp) is Literal:
        return next(v for v in typing.get_args(tp) if v != default)
    if tp is bool:
        return True if default is None else not default
    if typing.get_origin(tp) is tuple:
        return default[:2]
    if tp is int:
        return 16 if default is None else default + 2
    if tp is float:
        return default / 2 if default else 0.01
    return "sgd"  # the optimizer: another transformers optim name


def declared() -> list[tuple[type[hyperparams.Declaration], str, Any, hyperparams.Param]]:
    return [(d, name, info, where) for d in hyperparams.DECLARATIONS for name, info, where in d.declared()]


def crd_name(name: str, where: hyperparams.Param) -> str:
    return where.alias or to_camel(where.cr or name)


def others() -> dict[str, Any]:
    values = {name: other_value(info) for _, name, info, _ in declared()}
    for declaration in hyperparams.DECLARATIONS:
        declaration.model_validate({n: values[n] for n in declaration.model_fields})  # the test's values are valid
    return values


def test_every_declared_parameter_is_in_the_published_crd_and_the_jobs_help() -> None:
    spec = yaml.safe_load(PUBLISHED_CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = spec["properties"]["spec"]["properties"]
    objects = {hyperparams.LoraParameters: spec["lora"]["properties"],
               hyperparams.TrainingParameters: spec["training"]["properties"]}
    overrides = spec["stages"]["items"]["properties"]["training"]["properties"]
    help_text = subprocess.run([sys.executable, "-m", "kubetune_jobs.cli", "train", "--help"], capture_output=True,
                               text=True, check=True).stdout
    for declaration, name, info, where in declared():
        field = objects[declaration][crd_name(name, where)]
        default = info.get_default()
        assert field.get("default") == (list(default) if isinstance(default, tuple) else default), name
        assert field["description"] == info.description, name
        if declaration is hyperparams.TrainingParameters:
            assert overrides[crd_name(name, where)]["nullable"] is True, name
        flag = "--" + name.replace("_", "-")
        assert f" {flag} " in words(help_text) or f" {flag}," in help_text, flag
        assert "".join(info.description.split()) in "".join(help_text.split()), flag
    assert len(objects[hyperparams.TrainingParameters]) == len(hyperparams.TrainingParameters.model_fields)
    assert len(objects[hyperparams.LoraParameters]) == len(hyperparams.LoraParameters.model_fields)


def test_the_trainer_gets_every_parameter_declared_for_it(tmp_path: Path) -> None:
    from peft import LoraConfig

    from kubetune_jobs.train import backend

    values = others()
    opts = TrainOptions(**REQUIRED, **values)
    config = sft_config(opts, tmp_path)
    lora = LoraConfig(task_type="CAUSAL_LM", **backend._lora_kwargs(opts, SimpleNamespace(num_hidden_layers=1024)))
    # The one LoRA field the job resolves itself: the last N of the model's layers.
    assert lora.layers_to_transform == list(range(1024 - values["lora_top_layers"], 1024))
    reached = []
    for _, name, _, where in declared():
        expected = values[name]
        for keyword in where.sft:
            assert getattr(config, keyword) == expected, (name, keyword)
            reached.append(name)
        for keyword in where.peft:
            got = getattr(lora, keyword)
            assert (set(got) == set(expected)) if isinstance(expected, tuple) else got == expected, (name, keyword)
            reached.append(name)
    assert {"learning_rate", "weight_decay", "lora_r", "target_modules"} <= set(reached)


def test_every_training_parameter_is_settable_per_stage_and_fingerprinted_when_it_changes_results() -> None:
    values = others()

    def train_steps(raw: dict) -> dict[str, Any]:
        return {s.name: s for s in build_plan("r", "ns", raw, "s3://b", uid="u") if s.kind == "train"}

    base = train_steps(minimal())
    for declaration, name, info, where in declared():
        raw = minimal()
        value = list(values[name]) if isinstance(values[name], tuple) else values[name]
        if declaration is hyperparams.TrainingParameters:
            raw["stages"][1]["training"] = {crd_name(name, where): value}
        else:
            raw["lora"] = {crd_name(name, where): value}
        steps = train_steps(raw)
        tools = TrainOptions.parse(list(steps["train-tools"].args[1:]))
        chat = TrainOptions.parse(list(steps["train-chat"].args[1:]))
        assert getattr(tools, name) == values[name], name
        default = info.get_default()
        if declaration is hyperparams.TrainingParameters:
            assert getattr(chat, name) == default, f"{name}: the override applies to its stage only"
        changed = steps["train-tools"].fingerprint != base["train-tools"].fingerprint
        assert changed == where.changes_results, name
