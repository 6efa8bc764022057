"""The train job end to end on a tiny random Qwen2 model: stages chain, exports load, progress and
metrics are reported, and bad input fails with one line and nothing written."""

from __future__ import annotations

import math
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from kubetune_jobs import chat_template, cli
from kubetune_jobs.train import metrics

DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"
FAST = ["--max-steps", "3", "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "384",
        "--save-steps", "2", "--lora-r", "4", "--lora-alpha", "8", "--learning-rate", "1e-2", "--precision", "auto",
        "--no-load-in-4bit"]


def pushed(url: str) -> dict[tuple[str, str, str], float]:
    """(metric, run, stage) -> value as the Pushgateway exposes them to Prometheus."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("kubetune_train_"):
                out[(sample.name, sample.labels.get("run"), sample.labels.get("stage"))] = sample.value
    return out


def weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def test_two_stages_chain_and_report(tiny_qwen2: str, tmp_path: Path, pushgateway: str) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    chat, tools = tmp_path / "stages" / "chat", tmp_path / "stages" / "tools"
    common = ["--data", str(DATA), "--pushgateway", pushgateway, "--run-name", "run-a", *FAST]
    assert cli.main(["train", "--model", tiny_qwen2, "--output", str(chat), "--stage-name", "chat", *common]) == 0
    assert cli.main(["train", "--model", str(chat / "merged"), "--output", str(tools),
                     "--stage-name", "tools", *common]) == 0

    for stage in (chat, tools):
        for sub in ("adapter", "merged", "checkpoints/step-2"):
            assert (stage / sub / "_COMPLETE").exists(), sub
        progress = __import__("json").loads((stage / "progress.json").read_text())
        assert progress["state"] == "succeeded"
        assert progress["step"] == progress["total"] == 3 and progress["start_step"] == 0
        assert math.isfinite(progress["loss"]) and progress["learning_rate"] is not None
        assert progress["tokens_per_second"] > 0 and progress["eta_seconds"] == 0 and progress["epoch"] > 0
        assert progress["eval_loss"] < progress["eval_loss_start"]
        newest = max((stage / "checkpoints").iterdir(), key=lambda d: int(d.name.split("-")[1]))
        assert progress["checkpoint"] == str(newest) and (newest / "_COMPLETE").exists()

        model = AutoModelForCausalLM.from_pretrained(stage / "merged")
        tokenizer = AutoTokenizer.from_pretrained(stage / "merged")
        assert model.config.model_type == "qwen2"
        assert tokenizer.chat_template == chat_template.template()
        ids = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        assert model.generate(**ids, max_new_tokens=2, do_sample=False).shape[1] > ids["input_ids"].shape[1]

    # Stage 2 trained on stage 1's merge, which differs from the random base; the adapter reproduces it.
    base_w, chat_w, tools_w = weights(Path(tiny_qwen2)), weights(chat / "merged"), weights(tools / "merged")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(base_w[key], chat_w[key]) and not torch.equal(chat_w[key], tools_w[key])
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(chat / "merged"), tools / "adapter")
    merged_again = adapted.merge_and_unload().state_dict()[key]
    assert torch.allclose(merged_again, tools_w[key], atol=1e-6)

    got = pushed(pushgateway)
    for stage in ("chat", "tools"):
        assert got[(metrics.STEP, "run-a", stage)] == 3
        assert got[(metrics.PLANNED_STEPS, "run-a", stage)] == 3
        assert got[(metrics.TOKENS, "run-a", stage)] > 0
        assert math.isfinite(got[(metrics.LOSS, "run-a", stage)])

    # Same flags again: the stage is done, nothing is redone or rewritten.
    marker = (tools / "merged" / "_COMPLETE").stat().st_mtime_ns
    assert cli.main(["train", "--model", str(chat / "merged"), "--output", str(tools),
                     "--stage-name", "tools", *common]) == 0
    assert (tools / "merged" / "_COMPLETE").stat().st_mtime_ns == marker


@pytest.mark.parametrize("case", ["missing-data", "filtered-empty", "no-model", "bad-model", "no-store"])
def test_bad_input_fails_with_one_line_and_writes_nothing(case: str, tiny_qwen2: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture, monkeypatch) -> None:
    out = tmp_path / "out"
    model, data, extra, expect = tiny_qwen2, str(DATA), [], ""
    if case == "missing-data":
        data, expect = str(tmp_path / "nodata"), "missing dataset"
    elif case == "filtered-empty":
        extra, expect = ["--max-seq-length", "64"], "empty dataset after filtering"
    elif case == "no-model":
        model, expect = str(tmp_path / "nomodel"), "does not exist"
    elif case == "bad-model":
        bad = tmp_path / "badmodel"
        bad.mkdir()
        (bad / "config.json").write_text('{"model_type": "no-such-architecture"}')
        model, expect = str(bad), "cannot load"
    else:
        monkeypatch.setenv("KUBETUNE_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("KUBETUNE_S3_RETRIES", "1")
        out, expect = "s3://bucket/stage", "object store"
    rc = cli.main(["train", "--model", model, "--data", data, "--output", str(out), *FAST, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and expect in err[0], err
    if isinstance(out, Path):
        assert not out.exists()
