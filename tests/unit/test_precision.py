"""`precision: auto`: the choice from the probe's timings (both outcomes), its per-machine cache, and
the probe itself (which must not disturb the training run that calls it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kubetune_jobs import precision
from kubetune_jobs.precision import GENERATION, TRAINING, Timings
from kubetune_jobs.train import backend

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="on CUDA auto does not probe")


class FakeProbe:
    """Stands in for the measurement only: returns given timings and counts the calls."""

    def __init__(self, fp32_s: float, bf16_s: float, spread: float = 1.05) -> None:
        self.timings, self.calls = Timings(fp32_s, bf16_s, spread), []

    def __call__(self, workload: str) -> Timings:
        self.calls.append(workload)
        return self.timings


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KUBETUNE_CACHE", str(tmp_path))
    for name in precision.ISA_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize("workload", [TRAINING, GENERATION])
@pytest.mark.parametrize(("fp32_s", "bf16_s", "expected"), [
    (0.300, 0.150, "bf16"),  # an AMX CPU: bf16 2x
    (0.300, 0.520, "fp32"),  # AVX-512 BF16 without AMX, training: bf16 0.57x
    (0.300, 0.290, "fp32"),  # about even (generation there): not clearly faster, so fp32
])
def test_decide_picks_bf16_only_when_clearly_faster(workload: str, fp32_s: float, bf16_s: float,
                                                    expected: str) -> None:
    chosen = precision.decide(workload, Timings(fp32_s, bf16_s), "measured now")
    assert chosen.name == expected
    # The reason says what was measured, for which work, and against what bar.
    assert f"{bf16_s * 1000:.0f} ms in bf16" in chosen.reason and f"{fp32_s * 1000:.0f} ms in fp32" in chosen.reason
    assert precision.WORKLOADS[workload] in chosen.reason and f"{precision.SPEEDUP_NEEDED}x" in chosen.reason
    assert chosen.reason.endswith("measured now")


def test_a_probe_whose_runs_disagree_proves_nothing() -> None:
    steady = precision.decide(GENERATION, Timings(0.3, 0.15, spread=precision.MAX_SPREAD))
    busy = precision.decide(GENERATION, Timings(0.3, 0.15, spread=1.8))  # bf16 2x, but runs 1.8x apart
    assert steady.name == "bf16" and busy.name == "fp32" and "disagreed by 1.80x" in busy.reason


def test_margin_boundary() -> None:
    at = precision.SPEEDUP_NEEDED
    assert precision.decide(TRAINING, Timings(at, 1.0)).name == "bf16"
    assert precision.decide(TRAINING, Timings(at * 0.99, 1.0)).name == "fp32"


def test_cuda_keeps_bf16_where_supported_else_fp16() -> None:
    assert precision.for_cuda(True).name == "bf16"
    assert precision.for_cuda(False).name == "fp16"
    assert "CUDA" in precision.for_cuda(False).reason


@cpu_only
@pytest.mark.parametrize(("bf16_s", "expected"), [(0.15, "bf16"), (0.52, "fp32")])
def test_auto_probes_once_per_machine_then_reads_the_cache(cache: Path, bf16_s: float, expected: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProbe(0.3, bf16_s)
    first = precision.auto(TRAINING, probe=fake)
    assert first.name == expected and "measured now" in first.reason
    path = precision.cache_path(precision.machine_key())
    assert path.parent.parent == cache and str(path) in first.reason
    stored = json.loads(path.read_text())
    assert stored["key"] == precision.machine_key() and stored[TRAINING]["bf16_s"] == fake.timings.bf16_s

    again = precision.auto(TRAINING, probe=fake)
    assert again.name == expected and "cached" in again.reason and "measured now" not in again.reason
    assert fake.calls == [TRAINING]

    # Generation is decided by its own probe, in the same machine's entry.
    precision.auto(GENERATION, probe=fake)
    assert fake.calls == [TRAINING, GENERATION] and set(json.loads(path.read_text())) >= {TRAINING, GENERATION}

    # A capped oneDNN ISA (AMX off) is another machine: probed again, not read from the AMX entry.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    precision.auto(TRAINING, probe=fake)
    assert fake.calls == [TRAINING, GENERATION, TRAINING]
    capped = precision.cache_path(precision.machine_key())
    assert capped != path

    # So is another OpenMP wait policy (`make test` runs its workers with a passive one).
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    precision.auto(TRAINING, probe=fake)
    assert fake.calls == [TRAINING, GENERATION, TRAINING, TRAINING]
    assert precision.cache_path(precision.machine_key()) not in (path, capped)


@cpu_only
def test_a_disturbed_probe_means_fp32_and_is_not_cached(cache: Path) -> None:
    fake = FakeProbe(0.3, 0.15, spread=1.8)  # bf16 2x, but its runs disagree
    chosen = precision.auto(GENERATION, probe=fake)
    assert chosen.name == "fp32" and "disagreed by 1.80x" in chosen.reason and "not cached" in chosen.reason
    precision.auto(GENERATION, probe=fake)
    assert fake.calls == [GENERATION, GENERATION]
    assert not precision.cache_path(precision.machine_key()).exists()


@cpu_only
@pytest.mark.parametrize("content", ["not json", '{"training": {"fp32_s": 0.3}}', '{"training": [1]}'])
def test_an_unreadable_cache_entry_is_measured_again(cache: Path, content: str) -> None:
    path = precision.cache_path(precision.machine_key())
    path.parent.mkdir(parents=True)
    path.write_text(content)
    fake = FakeProbe(0.3, 0.15)
    assert precision.auto(TRAINING, probe=fake).name == "bf16" and fake.calls == [TRAINING]
    assert json.loads(path.read_text())[TRAINING]["bf16_s"] == 0.15


@cpu_only
def test_a_failing_probe_means_fp32(cache: Path) -> None:
    def broken(workload: str) -> Timings:
        raise RuntimeError("bf16 matmul unsupported\nsecond line")

    chosen = precision.auto(TRAINING, probe=broken)
    assert chosen.name == "fp32"
    assert "probe" in chosen.reason and "bf16 matmul unsupported" in chosen.reason and "\n" not in chosen.reason


@cpu_only
@pytest.mark.parametrize(("bf16_s", "expected"), [(0.15, "bf16"), (0.52, "fp32")])
def test_train_job_auto_follows_the_probe_and_explicit_precisions_stay(cache: Path, bf16_s: float,
                                                                      expected: str) -> None:
    fake = FakeProbe(0.3, bf16_s)
    precision.auto(TRAINING, probe=fake)  # as if this machine had been probed with these timings
    chosen = backend.precision("auto")
    assert chosen.name == expected and "cached" in chosen.reason
    for requested in ("bf16", "fp32"):
        explicit = backend.precision(requested)
        assert explicit.name == requested and explicit.reason == f"requested (--precision {requested})"
    assert fake.calls == [TRAINING]


@pytest.mark.parametrize("workload", [TRAINING, GENERATION])
def test_the_probe_times_both_precisions_and_leaves_rng_and_threads_alone(workload: str) -> None:
    from kubetune_jobs import precision_probe

    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    timings = precision_probe.measure(workload)
    assert torch.equal(torch.random.get_rng_state(), state) and torch.get_num_threads() == threads
    assert timings.fp32_s > 0 and timings.bf16_s > 0 and timings.spread >= 1
    assert precision.decide(workload, timings).name in ("bf16", "fp32")


@pytest.mark.parametrize(("bf16_s", "rounds"), [(3.0, 1), (1.5, 3), (0.5, 3)])
def test_the_probe_stops_after_one_round_where_bf16_is_decisively_slower(monkeypatch: pytest.MonkeyPatch,
                                                                         bf16_s: float, rounds: int) -> None:
    """A bf16 run at DECISIVE times fp32's slowest decides for fp32 at once (a CPU without bf16 units: 14x);
    anything closer gets the probe's full number of runs."""
    from kubetune_jobs import precision_probe

    calls = {"fp32": 0, "bf16": 0}

    def work(dtype: torch.dtype):
        name = "bf16" if dtype == torch.bfloat16 else "fp32"

        def run() -> float:
            calls[name] += 1
            return bf16_s if name == "bf16" else 1.0

        return run

    monkeypatch.setattr(precision_probe, "_training", work)
    timings = precision_probe.measure(TRAINING)
    assert calls == {"fp32": 1 + rounds, "bf16": 1 + rounds}  # one warm-up each, then the timed rounds
    assert (timings.fp32_s, timings.bf16_s) == (1.0, bf16_s)
    assert precision.decide(TRAINING, timings).name == ("bf16" if bf16_s < 1 / precision.SPEEDUP_NEEDED else "fp32")
