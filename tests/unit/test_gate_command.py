"""`kubetune gate SERVE_MANIFEST --candidate REPORT.json [--serving REPORT.json]`: crafted report files, one per
way the gate once failed open and per way a file can fail to be a report; exit 0 promote, 3 rejected, 2
unusable input, the verdict table printed, never a traceback, a corrupt report never 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubetune_local import cli

MANIFEST = {"apiVersion": "kubetune.io/v1alpha1", "kind": "ModelServe", "metadata": {"name": "assistant"},
            "spec": {"model": {"uri": "s3://kubetune/models/tools"}, "promotion": {
                "enabled": True, "suites": [{"name": "seed-tools"}],
                "gate": {"minAccuracy": {"seed-tools": 0.5}, "minMargin": 0.05, "maxFalseCallRate": 0.1}}}}


def report(accuracy: str = "0.7", false_call_rate: str = "0.0", complete: str = "true",
           suite: str = "seed-tools") -> str:
    return (f'{{"complete": {complete}, "suites": {{"{suite}": {{"accuracy": {accuracy}, '
            f'"false_call_rate": {false_call_rate}}}}}}}')


@pytest.fixture
def files(tmp_path: Path):
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(MANIFEST))
    (tmp_path / "serving.json").write_text(report("0.6"))

    def write(name: str, text: str | bytes) -> str:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    write.dir = tmp_path  # type: ignore[attr-defined]
    return write


def gate(capsys: pytest.CaptureFixture[str], files, candidate: str, serving: str | None = "serving.json",
         manifest: str = "serve.yaml") -> tuple[int, str]:
    d = files.dir
    argv = ["gate", str(d / manifest), "--candidate", str(d / candidate)]
    if serving is not None:
        argv += ["--serving", str(d / serving)]
    code = cli.main(argv)
    return code, " ".join(capsys.readouterr().out.split())


def test_a_better_candidate_is_promoted_and_every_criterion_printed(capsys, files) -> None:
    files("c.json", report("0.7"))
    code, out = gate(capsys, files, "c.json")
    assert code == 0 and out.endswith("gate: promoted")
    for row in ("evaluation complete on both sides complete complete pass",
                "seed-tools accuracy >= 0.5 0.700 0.600 pass", "mean accuracy beats serving by 0.05 0.700 0.600 pass",
                "seed-tools false-call rate <= 0.1 0.000 0.000 pass"):
        assert row in out, out


@pytest.mark.parametrize(("candidate", "why"), [
    (report("NaN"), "suites.seed-tools.accuracy is NaN"),
    (report("7.5"), "suites.seed-tools.accuracy is 7.5"),
    (report("true"), "suites.seed-tools.accuracy is true"),
    (report('"0.9"'), 'suites.seed-tools.accuracy is "0.9"'),
    (report(false_call_rate="NaN"), "suites.seed-tools.false_call_rate is NaN"),
    (report("0.9", complete="false"), "the candidate's report: the evaluation is incomplete"),
    (report("0.9", suite="chat"), "the candidate's report has no suite seed-tools"),
    (report("0.62"), "minMargin: mean accuracy 0.620 does not beat the serving model's 0.600 by 0.05"),
])
def test_a_bad_candidate_figure_is_a_rejection(capsys, files, candidate: str, why: str) -> None:
    files("c.json", candidate)
    code, out = gate(capsys, files, "c.json")
    assert code == 3 and "gate: rejected:" in out and why in out, out


@pytest.mark.parametrize(("serving", "why"), [
    (report("null"), "the serving model's report: suites.seed-tools.accuracy is missing"),
    (report("NaN"), "the serving model's report: suites.seed-tools.accuracy is NaN"),
    (report("-Infinity"), "the serving model's report: suites.seed-tools.accuracy is -Infinity"),
    (report("0.6", suite="bfcl-multiple"), "the serving model's report has no suite seed-tools (it has: "
                                           "bfcl-multiple)"),
    (report("0.6", complete="false"), "the serving model's report: the evaluation is incomplete"),
])
def test_a_serving_report_that_cannot_be_compared_with_is_a_rejection(capsys, files, serving: str, why: str) -> None:
    files("c.json", report("0.95"))
    files("s.json", serving)
    code, out = gate(capsys, files, "c.json", "s.json")
    assert code == 3 and why in out, out


@pytest.mark.parametrize(("side", "text", "why"), [
    ("serving", "garbage", "the serving model's report: not JSON"),
    ("serving", json.dumps({"complete": True, "endpoint": "http://e/v1", "model": "m", "max_tokens": 64,
                            "levels": [{"concurrency": 1, "output_throughput": 10.0}]}),
     "the serving model's report: not a report: no `suites`"),
    ("candidate", "", "the candidate's report: not JSON"),
    ("candidate", "[0.9]", "the candidate's report: not a report: a JSON list"),
    ("candidate", '{"complete": "true", "suites": {}}', "the candidate's report: not a report: `complete` is \"true\""),
    ("candidate", '{"suites": {"seed-tools": {"accuracy": 0.9}}}', "the candidate's report: not a report: no `complete`"),
])
def test_what_is_not_a_report_is_unusable_input(capsys, files, side: str, text: str, why: str) -> None:
    files("c.json", report("0.95"))
    files("x.json", text)
    code, out = gate(capsys, files, "x.json" if side == "candidate" else "c.json",
                     "x.json" if side == "serving" else "serving.json")
    assert code == 2 and "gate: unusable input:" in out and why in out, out


def test_a_missing_report_file_is_unusable_input(capsys, files) -> None:
    files("c.json", report())
    code, out = gate(capsys, files, "absent.json")
    assert code == 2 and "the candidate's report: unreadable:" in out and "No such file or directory" in out
    code, out = gate(capsys, files, "c.json", "absent.json")
    assert code == 2 and "the serving model's report: unreadable:" in out


def test_without_serving_it_is_a_first_rollout_and_says_nothing_was_compared(capsys, files) -> None:
    files("c.json", report("0.7"))
    code, out = gate(capsys, files, "c.json", None)
    assert code == 0 and "no serving model yet (first rollout)" in out and "none (first rollout)" in out
    files("nan.json", report("NaN"))
    assert gate(capsys, files, "nan.json", None)[0] == 3


def test_an_unreadable_or_gateless_manifest_is_unusable_input(capsys, files) -> None:
    files("c.json", report())
    files("bad.yaml", "kind: ModelServe\nspec: [")
    code, out = gate(capsys, files, "c.json", manifest="bad.yaml")
    assert code == 2 and "gate: unusable input:" in out and "not valid YAML" in out
    off = {**MANIFEST, "spec": {**MANIFEST["spec"], "promotion": {"enabled": False}}}
    files("off.yaml", yaml.safe_dump(off))
    code, out = gate(capsys, files, "c.json", manifest="off.yaml")
    assert code == 2 and "spec.promotion.enabled is false" in out


def test_huge_and_deeply_nested_files_end_in_one_line_not_a_traceback(files) -> None:
    """Run as the user runs it (a process of its own): exit 2, a verdict, no traceback."""
    files("huge.json", b'{"complete": true, "suites": {}, "pad": "' + b"x" * (17 * 2**20) + b'"}')
    files("deep.json", b'{"complete": true, "suites": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    for name, why in (("huge.json", "larger than the 16777216 bytes a report may hold"),
                      ("deep.json", "not a report: nested too deeply")):
        done = subprocess.run([sys.executable, "-m", "kubetune_local.cli", "gate", str(files.dir / "serve.yaml"),
                               "--candidate", str(files.dir / name), "--serving", str(files.dir / "serving.json")],
                              capture_output=True, text=True, timeout=120)
        out = " ".join(done.stdout.split())
        assert done.returncode == 2 and why in out, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr


def test_serving_objectives_read_both_benchmarks(capsys, files) -> None:
    objectives = {**MANIFEST["spec"]["promotion"]["gate"], "maxTTFTp95Ms": 500, "minThroughputRatio": 0.9,
                  "benchmarkConcurrency": 8}
    doc = {**MANIFEST, "spec": {**MANIFEST["spec"], "promotion": {**MANIFEST["spec"]["promotion"], "gate": objectives}}}
    files("obj.yaml", yaml.safe_dump(doc))
    files("c.json", report("0.7"))

    def bench(ttft: float, throughput: float) -> str:
        return json.dumps({"complete": True, "endpoint": "http://e/v1", "model": "m", "max_tokens": 64, "levels": [
            {"concurrency": 8, "completed": 16, "failed": 0, "output_throughput": throughput, "ttft_p95_s": ttft}]})

    files("fast.json", bench(0.2, 100.0))
    files("slow.json", bench(0.9, 100.0))
    files("serving-bench.json", bench(0.2, 100.0))
    d = files.dir
    argv = ["gate", str(d / "obj.yaml"), "--candidate", str(d / "c.json"), "--serving", str(d / "serving.json"),
            "--serving-bench", str(d / "serving-bench.json")]
    assert cli.main([*argv, "--candidate-bench", str(d / "fast.json")]) == 0
    assert "output tok/s at concurrency 8 >= 0.9 x serving 100.0 100.0 pass" in " ".join(capsys.readouterr().out.split())
    assert cli.main([*argv, "--candidate-bench", str(d / "slow.json")]) == 3
    assert "maxTTFTp95Ms: the candidate's TTFT p95 at concurrency 8 is 900 ms > 500" in capsys.readouterr().out
    assert cli.main(argv) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "--candidate-bench" in out and "the candidate's benchmark: missing" in out
    assert cli.main([*argv, "--candidate-bench", str(d / "c.json")]) == 2, "a report is not a benchmark"
    assert "the candidate's benchmark: not a benchmark: no `levels`" in " ".join(capsys.readouterr().out.split())
