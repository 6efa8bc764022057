"""`kubetune serve` and `kubetune run`, as a user meets them when something goes wrong: every failure ends in
one line naming its cause (never a traceback), and Ctrl-C or SIGTERM, in any phase, leaves no process of the
command's tree behind.

Through the public command, as a subprocess, with real vLLM (the CPU build serving the bundled SmolLM2 from
a store laid out as `kubetune run` leaves a finished run), a real training job, and the process table read
with psutil. A signal while vLLM starts is sent as soon as vLLM's process appears (a start costs minutes on
a small CPU); the gate and serving phases take one full vLLM start each: the gate's two signals and the
serving phase's SIGTERM (Ctrl-C while serving: tests/integration/test_local_run.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubetune_jobs import storage
from kubetune_jobs.contract.layout import RunLayout
from support.process_tree import cmdline, kill, left, tree, wait_for
from support.served_model import served_dtype

RUN = "finished"
SIGNALS = [pytest.param(signal.SIGINT, 130, "Ctrl-C", id="SIGINT"),
           pytest.param(signal.SIGTERM, 143, "SIGTERM", id="SIGTERM")]


def kubetune(*args: str, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen:
    """`kubetune ARGS` as a user starts it: a wide terminal (rich does not fold the lines looked for),
    Ctrl-C's default disposition (a shell running tests in the background hands it down ignored)."""
    env = {**os.environ, "COLUMNS": "400", "PYTHONUNBUFFERED": "1", **(env or {})}
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, **popen}
    return subprocess.Popen([sys.executable, "-m", "kubetune_local.cli", *args], text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(tree(proc.pid))
        out, _ = proc.communicate()
        raise AssertionError(f"still running after {timeout:.0f} s:\n{out}") from None
    return out or ""


def one_line_failure(out: str, rc: int, *needles: str) -> str:
    """The command failed, its last line names the cause (every needle), and no traceback was printed."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert rc != 0 and lines, out
    assert "Traceback" not in out, out
    last = lines[-1]
    for needle in needles:
        assert needle in last, (needle, out)
    return last


def finished_run(store: Path, model: Path, name: str = RUN) -> None:
    """The store as `kubetune run` leaves a finished run: the summary `kubetune serve` reads and the final
    model, published complete (its files hard-linked from `model`)."""
    layout = RunLayout.of(str(store), "default", name)
    merged = Path(layout.merged("tools"))
    merged.mkdir(parents=True)
    for f in model.iterdir():
        if f.is_file() and not f.name.startswith("."):
            try:
                os.link(f, merged / f.name)
            except OSError:  # another file system
                shutil.copyfile(f, merged / f.name)
    storage.location(merged).upload_dir(merged)  # its _COMPLETE marker, written in place
    summary = {"apiVersion": "kubetune.io/v1alpha1", "kind": "FineTuneRun",
               "metadata": {"name": name, "namespace": "default"},
               "spec": {"baseModel": "bundled:smollm2-135m", "stages": [{"name": "tools"}]},
               "status": {"phase": "Succeeded", "artifacts": {
                   "root": layout.root, "finalModel": str(merged), "datasets": {}, "adapters": {},
                   "models": {"tools": str(merged)}}}}
    Path(layout.summary).write_text(json.dumps(summary))


def serve_manifest(dest: Path, model: dict | None = None, storage_spec: dict | None = None) -> Path:
    """A ModelServe of the finished run (or of `model`), gated on two seed-tools items."""
    spec = {"model": model or {"fineTuneRun": {"name": RUN}}, "servedModelName": "smollm2",
            "vllm": {"dtype": served_dtype(), "maxModelLen": 2048, "extraArgs": ["--enforce-eager", "--seed", "0"]},
            "resources": {"gpus": 0},
            "promotion": {"enabled": True, "suites": [{"name": "seed-tools", "limit": 2}], "maxNewTokens": 32,
                          "gate": {"minMargin": 0.0}}}
    return write_manifest(dest / "serve.yaml", "ModelServe", "lifecycle", spec, storage_spec)


def write_manifest(path: Path, kind: str, name: str, spec: dict, storage_spec: dict | None) -> Path:
    spec = {**spec, **({"storage": storage_spec} if storage_spec else {})}
    path.write_text(yaml.safe_dump({"apiVersion": "kubetune.io/v1alpha1", "kind": kind,
                                    "metadata": {"name": name, "namespace": "default"}, "spec": spec}))
    return path


@pytest.fixture(scope="module")
def store(servable_smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lifecycle") / "store"
    finished_run(root, servable_smollm2)
    return root


def free_port() -> int:
    from kubetune_jobs.serving.process import free_port

    return free_port()


def is_vllm(p) -> bool:
    return "vllm.entrypoints" in cmdline(p)


# ---------------------------------------------------------------- failures: one line naming the cause


def test_an_s3_model_without_a_store_says_so(tmp_path: Path) -> None:
    manifest = serve_manifest(tmp_path, model={"uri": "s3://models/ns/run/merged"})
    env = {k: v for k, v in os.environ.items() if k not in ("KUBETUNE_S3_ENDPOINT", "AWS_ENDPOINT_URL")}
    proc = subprocess.run([sys.executable, "-m", "kubetune_local.cli", "serve", str(manifest)], env=env,
                          capture_output=True, text=True, timeout=120)
    one_line_failure(proc.stdout + proc.stderr, proc.returncode, "s3://models/ns/run/merged",
                     "spec.storage.endpoint", "KUBETUNE_S3_ENDPOINT")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_unreachable_store_is_waited_for_within_the_users_bound(how: str, tmp_path: Path) -> None:
    """A store nobody answers at: the wait says what it waits for and how long, and gives up in that time."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        manifest = serve_manifest(tmp_path, storage_spec={"endpoint": f"http://127.0.0.1:{port}",
                                                          "credentialsSecret": "store-keys", "bucket": "models"})
        bound = ["--store-timeout", "2"] if how == "flag" else []
        env = {"KUBETUNE_S3_RETRY_BUDGET": "2"} if how == "env" else {}
        proc = kubetune("serve", str(manifest), *bound, env=env)
        out = finish(proc, timeout=120)
    waiting = [line for line in out.splitlines() if line.startswith("waiting:")]
    assert waiting and f"127.0.0.1:{port}" in waiting[0] and "retrying for up to 2 s" in waiting[0], out
    assert "--store-timeout" in waiting[0], out
    one_line_failure(out, proc.returncode, f"127.0.0.1:{port}", "in 2 s")


def test_a_malformed_retry_setting_is_named(tmp_path: Path) -> None:
    proc = kubetune("serve", str(serve_manifest(tmp_path)), env={"KUBETUNE_S3_RETRY_BUDGET": "soon"})
    one_line_failure(finish(proc), proc.returncode, "KUBETUNE_S3_RETRY_BUDGET", "soon")


def test_a_port_in_use_is_named(store: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(store), "--port", str(port))
        out = finish(proc)
    one_line_failure(out, proc.returncode, f"port {port}", "already in use")


def test_vllm_exiting_at_start_is_one_line_with_its_cause_and_log(store: Path, tmp_path: Path) -> None:
    """A vLLM venv that cannot run vLLM (this project's python, which has no vllm): the server dies at once."""
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(store), "--port", str(free_port()),
                    env={"KUBETUNE_VLLM_PYTHON": sys.executable})
    last = one_line_failure(finish(proc), proc.returncode, "vLLM exited with 1 while starting", "vllm", "log: ")
    log = Path(last.rsplit("log: ", 1)[1].rstrip(")"))
    assert log.is_file() and "vllm" in log.read_text()  # the log it points to is kept


def test_a_vllm_python_that_is_not_there_is_named(store: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(store), "--port", str(free_port()),
                    env={"KUBETUNE_VLLM_PYTHON": str(missing)})
    one_line_failure(finish(proc), proc.returncode, f"KUBETUNE_VLLM_PYTHON={missing}", "not an executable")


def test_a_store_that_is_a_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "store"
    file.write_text("not a directory")
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(file))
    one_line_failure(finish(proc), proc.returncode, f"--store {file}", "not a directory")


def test_a_missing_run_or_model_is_named(store: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(empty))
    one_line_failure(finish(proc), proc.returncode, f"no finished FineTuneRun '{RUN}'")
    missing = tmp_path / "gone"
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(store), "--against", str(missing),
                    "--gate-only")
    one_line_failure(finish(proc), proc.returncode, f"--against {missing}", "no such directory or file")


def test_a_summary_that_is_not_json_is_named(tmp_path: Path) -> None:
    root = tmp_path / "store"
    summary = Path(RunLayout.of(str(root), "default", RUN).summary)
    summary.parent.mkdir(parents=True)
    summary.write_bytes(b"\xff{not json")
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(root))
    one_line_failure(finish(proc), proc.returncode, str(summary), "not the summary")


def test_an_unforeseen_failure_is_one_line_pointing_to_its_traceback(tmp_path: Path) -> None:
    """The last line of defence: a summary of the right kind but the wrong shape (`status` a string) trips
    code that trusts it; the command still ends in one line, and the traceback is in the log it names."""
    root = tmp_path / "store"
    summary = Path(RunLayout.of(str(root), "default", RUN).summary)
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"kind": "FineTuneRun", "status": "Succeeded"}))
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(root), env={"KUBETUNE_CACHE": str(tmp_path)})
    last = one_line_failure(finish(proc), proc.returncode, "unexpected error", "the traceback is in")
    log = Path(last.rsplit("the traceback is in ", 1)[1])
    assert log.is_relative_to(tmp_path) and "Traceback (most recent call last)" in log.read_text()


# ---------------------------------------------------------------- signals: nothing left behind


def signalled(proc: subprocess.Popen, procs: list, sig: signal.Signals) -> str:
    """Send `sig` to the command alone (as `kill` does), let it end, and check nothing it started is left."""
    assert any(is_vllm(p) for p in procs) or len(procs) > 1, procs
    proc.send_signal(sig)
    out = finish(proc)
    still = left(procs)
    kill(procs)
    assert not still, f"left running after {sig.name}: {still}\n{out}"
    return out


@pytest.mark.parametrize(("sig", "code", "named"), SIGNALS)
def test_a_signal_while_vllm_starts_stops_it(sig: signal.Signals, code: int, named: str, store: Path,
                                             tmp_path: Path) -> None:
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(store), "--port", str(free_port()))
    procs = wait_for(proc.pid, proc, lambda ps: any(is_vllm(p) for p in ps), "vLLM process")
    out = signalled(proc, procs, sig)
    assert proc.returncode == code and "Traceback" not in out, out
    assert out.strip().splitlines()[-1] == f"kubetune serve: stopped ({named})", out


def serving_report(dest: Path) -> Path:
    """The serving model's scores on the gated suite, as `--against REPORT.json` takes them."""
    path = dest / "serving-report.json"
    path.write_text(json.dumps({"complete": True, "suites": {"seed-tools": {
        "items": 2, "scored": 2, "passed": 0, "accuracy": 0.0, "false_call_rate": 0.0}}}))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "named"), SIGNALS)
def test_a_signal_while_the_gate_evaluates_stops_the_server_and_the_evaluation(
        sig: signal.Signals, code: int, named: str, store: Path, tmp_path: Path) -> None:
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(store), "--port", str(free_port()),
                    "--against", str(serving_report(tmp_path)))

    def evaluating(ps: list) -> bool:
        return any(is_vllm(p) for p in ps) and any("kubetune_jobs.cli evaluate" in cmdline(p) for p in ps)

    procs = wait_for(proc.pid, proc, evaluating, "evaluation of the candidate")
    out = signalled(proc, procs, sig)
    assert "evaluating the candidate model" in out, out
    assert proc.returncode == code and "Traceback" not in out, out
    assert out.strip().splitlines()[-1] == f"kubetune serve: stopped ({named})", out


@pytest.mark.slow
def test_sigterm_while_serving_stops_the_server(store: Path, tmp_path: Path) -> None:
    proc = kubetune("serve", str(serve_manifest(tmp_path)), "--store", str(store), "--port", str(free_port()))
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("serving at "):
            break
    assert lines and lines[-1].startswith("serving at "), "".join(lines) + finish(proc)
    out = "".join(lines) + signalled(proc, tree(proc.pid), signal.SIGTERM)
    assert proc.returncode == 0 and "stopping the server (SIGTERM)" in out and "Traceback" not in out, out


# ---------------------------------------------------------------- kubetune run


def run_manifest(dest: Path, base_model: str, *, source: str = "bundled:quickstart-tools",
                 storage_spec: dict | None = None) -> Path:
    """A one-stage run of a tiny model: long enough to be interrupted while it trains, short to resume."""
    spec = {"baseModel": base_model,
            "stages": [{"name": "tools", "dataset": {"source": source, "format": "xlam", "maxSamples": 40,
                                                     "noCallFraction": 0.0, "evalFraction": 0.1}}],
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targetModules": ["q_proj", "v_proj"]},
            "training": {"batchSize": 2, "gradAccum": 1, "maxSteps": 200, "saveSteps": 1000, "maxSeqLength": 384,
                         "loadIn4bit": False},
            "evaluation": {"suites": [{"name": "seed-tools", "limit": 1}], "evaluateBase": False,
                           "evaluateEveryStage": False, "maxNewTokens": 16},
            "resources": {"gpus": 0}}
    return write_manifest(dest / "run.yaml", "FineTuneRun", "tiny", spec, storage_spec)


def test_run_into_a_store_that_is_a_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "store"
    file.write_text("not a directory")
    proc = kubetune("run", str(run_manifest(tmp_path, "bundled:smollm2-135m")), "--store", str(file))
    one_line_failure(finish(proc), proc.returncode, f"--store {file}", "cannot write there")


def test_run_on_an_unreachable_store_gives_up_within_the_bound(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        manifest = run_manifest(tmp_path, "bundled:smollm2-135m", storage_spec={
            "endpoint": f"http://127.0.0.1:{port}", "credentialsSecret": "store-keys", "bucket": "runs"})
        proc = kubetune("run", str(manifest), "--store-timeout", "1")
        out = finish(proc, timeout=120)
    waiting = [line for line in out.splitlines() if line.startswith("waiting:")]
    assert waiting and f"127.0.0.1:{port}" in waiting[0] and "--store-timeout" in waiting[0], out
    one_line_failure(out, proc.returncode, f"127.0.0.1:{port}", "in 1 s")


def test_a_failed_step_is_one_line_with_the_jobs_reason_and_its_log(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data.jsonl"
    proc = kubetune("run", str(run_manifest(tmp_path, "bundled:smollm2-135m", source=str(missing))), "--store",
                    str(tmp_path / "store"))
    last = one_line_failure(finish(proc), proc.returncode, "prepare-tools failed (exit 1)", "kubetune-job prepare",
                            "log: ")
    assert Path(last.rsplit("log: ", 1)[1].rstrip(")")).is_file()


def test_a_closed_output_ends_the_command_in_one_line(tmp_path: Path) -> None:
    """`kubetune run ... | head -0`: its output closed before it writes its first line."""
    proc = kubetune("run", str(run_manifest(tmp_path, "bundled:smollm2-135m")), "--store", str(tmp_path / "store"),
                    stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    err = proc.stderr.read() if proc.stderr else ""
    proc.wait(300)
    kill(tree(proc.pid))
    one_line_failure(err, proc.returncode, "kubetune run: stopped: its output was closed")
    assert "Exception ignored" not in err, err


@pytest.mark.parametrize(("sig", "code", "named"), SIGNALS)
def test_a_signal_during_a_step_stops_its_job(sig: signal.Signals, code: int, named: str, tmp_path: Path) -> None:
    """The first step (prepare): the job is asked to stop as soon as it runs, and the command waits for it."""
    proc = kubetune("run", str(run_manifest(tmp_path, "bundled:smollm2-135m")), "--store", str(tmp_path / "store"))
    procs = wait_for(proc.pid, proc, lambda ps: any("kubetune_jobs.cli prepare" in cmdline(p) for p in ps),
                     "prepare job")
    out = signalled(proc, procs, sig)
    assert proc.returncode == code and "Traceback" not in out, out
    assert f"interrupted ({named}); run the same command again to resume tiny" in out, out


@pytest.mark.slow
def test_sigterm_while_training_checkpoints_and_the_same_command_resumes(tiny_qwen2: str, tmp_path: Path) -> None:
    """SIGTERM (a container stopping, `kill`) does what Ctrl-C does (test_local_run.py): the training job
    saves a checkpoint after its current step, the command exits 143 and nothing is left running; the same
    command resumes from that checkpoint (and is stopped the same way again)."""
    manifest, store = run_manifest(tmp_path, tiny_qwen2), tmp_path / "store"
    stage = Path(RunLayout.of(str(store), "default", "tiny").stage("tools"))
    train_log = store / "default" / "tiny" / "logs" / "train-tools.log"

    def trained_a_step(ps: list) -> bool:
        try:
            return json.loads((stage / "progress.json").read_text()).get("step", 0) >= 1
        except (FileNotFoundError, ValueError):
            return False

    proc = kubetune("run", str(manifest), "--store", str(store))
    procs = wait_for(proc.pid, proc, trained_a_step, "a training step", timeout=900)
    assert any("kubetune_jobs.cli train" in cmdline(p) for p in procs), [cmdline(p) for p in procs]
    out = signalled(proc, procs, signal.SIGTERM)
    assert proc.returncode == 143 and "Traceback" not in out, out
    assert "interrupted (SIGTERM); run the same command again to resume tiny" in out, out
    progress = json.loads((stage / "progress.json").read_text())
    assert progress["state"] == "preempted" and 1 <= progress["step"] < 200, progress
    assert (stage / "checkpoints" / f"step-{progress['step']}" / "_COMPLETE").is_file()

    resumed = f"resuming from checkpoint step {progress['step']}"
    again = kubetune("run", str(manifest), "--store", str(store))
    procs = wait_for(again.pid, again, lambda ps: resumed in train_log.read_text(), "the resumed training",
                     timeout=900)
    out = signalled(again, procs, signal.SIGTERM)
    assert again.returncode == 143 and "prepare-tools: already done, skipped" in out, out
