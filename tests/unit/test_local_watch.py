"""`kubetune serve`'s watch after a promotion: the live probe (`kubetune-job probe`, a real subprocess) against an
endpoint that does not answer writes rounds with every request unanswered, and the watch, judging each round as the
operator does, rolls back with the reason; without a previous model there is nothing to watch for."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from kubetune_jobs.serving.process import free_port
from kubetune_local.live import LiveProbe, RollBack
from kubetune_local.serve import JOB, Local, _watch
from kubetune_operator.modelserve import api, source


def serve(**promotion) -> api.ModelServe:
    return api.RESOURCE.parse_manifest({
        "apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": "assistant", "namespace": "default"},
        "spec": {"model": {"hub": "HuggingFaceTB/SmolLM2-135M-Instruct"}, "promotion": promotion,
                 "monitoring": {"probe": {"enabled": True, "intervalSeconds": 10,
                                          "suites": [{"name": "seed-tools", "limit": 2}]}}}})


def test_a_probe_that_gets_no_answers_rolls_back_within_the_window(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=400)
    local = Local(serve(watchSeconds=60), tmp_path / "store", console)
    probe = LiveProbe(JOB, local.serve, local.root, f"http://127.0.0.1:{free_port()}/v1", "r1", console,
                      tmp_path / "probe.log", local.locate)
    try:
        with pytest.raises(RollBack, match="maxFailedRate: 1.00 of the requests unanswered"):
            _watch(local, probe, source.Target("base", hub="bundled:smollm2-135m"), console)
    finally:
        probe.stop()
    text = out.getvalue()
    assert "watch revision r1 for 60 s" in text and "rolling back revision r1" in text
    assert "probe revision r1: accuracy 0%" in text and "unanswered 2/2" in text  # the health line
    assert probe.proc.returncode is not None, "the probe stops with the server"


def test_without_a_previous_model_or_a_window_nothing_is_watched(tmp_path: Path) -> None:
    console = Console(file=io.StringIO())
    _watch(Local(serve(watchSeconds=60), tmp_path, console), None, None, console)  # returns at once
    _watch(Local(serve(), tmp_path, console), None, source.Target("base", hub="x"), console)


def test_a_rollback_serves_the_previous_model_with_the_template_it_was_gated_with(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from kubetune_local import serve as serve_module

    console = Console(file=io.StringIO())
    local = Local(serve(watchSeconds=60), tmp_path, console)
    candidate, previous = source.Target("candidate", hub="bundled:smollm2-135m"), source.Target("base", hub="x")
    calls = []

    def serving(local_, target, port, console_, **kw):
        calls.append((target.source, kw))
        if len(calls) == 1:
            raise RollBack("maxUnparseableRate")
        return 0

    monkeypatch.setattr(serve_module, "serve_forever", serving)
    monkeypatch.setattr(Local, "files", lambda self, target: type("F", (), {"chat_template": "/t/candidate.jinja"})())
    assert serve_module.serve_promoted(local, candidate, previous, 8000, console, started := object()) == 0
    assert calls == [("candidate", {"started_server": started, "previous": previous}),
                     ("base", {"template": "/t/candidate.jinja"})]
