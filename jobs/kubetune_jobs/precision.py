"""What `precision: auto` means on this machine, decided apart for LoRA training and for generation.

CUDA: bf16 where the device supports it, else fp16. CPU: measured, because feature flags do not
predict it. A CPU with AMX runs bf16 1.5-2x faster than fp32 (BENCHMARKS.md, "train" and
"evaluate"); one with AVX-512 BF16 but no AMX trained at 0.57x the speed of fp32 and generated no
faster. So `precision_probe` times the same small work in both, once per machine, and bf16 is picked
only when it beats fp32 by `SPEEDUP_NEEDED` in a probe whose runs agree: fp32 is never the less
correct choice, so an unclear result goes to it.

Probe results are cached in `<cache>/precision/<key>.json` (cache: `KUBETUNE_CACHE`, default
~/.cache/kubetune). The key is what changes the answer: CPU model and flags, torch version, thread
count and oneDNN's ISA cap (`ONEDNN_MAX_CPU_ISA`; with it set to AVX512_CORE_BF16 an AMX machine
behaves like one without AMX). `decide` and `for_cuda` are pure, so the choice can be tested on
given timings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRAINING = "training"
GENERATION = "generation"
WORKLOADS = {TRAINING: "a LoRA training step",
             GENERATION: "batched generation (8 prompts x 900 tokens + 112 new, estimated from its parts)"}
# bf16 must do the probe's work in at most 1/1.2 of fp32's time. On a 2-core AMX machine (at load 5-6)
# the one-thread CPU-time probe found bf16 1.87x (training) and 2.55x (generation); with AMX hidden
# (ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16) 0.77x and 1.11x (BENCHMARKS.md, "precision: auto").
SPEEDUP_NEEDED = 1.2
# Fastest runs further apart than this were disturbed by other work, and then so is the ratio (on a
# busy 2-core machine a wall-clock probe said 1.17x where generation ran 1.96x faster in bf16, and
# 1.52x where training ran 1.00x): such a probe proves nothing, so fp32, and it is not cached.
MAX_SPREAD = 1.25
PROBE_VERSION = 3  # bump when the probe's work changes, so old verdicts are not reused
ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# How OpenMP threads wait changes what both precisions cost (BENCHMARKS.md, "OpenMP wait policy"): a verdict
# measured under one setting is not reused under another.
OMP_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


@dataclass(frozen=True)
class Precision:
    name: str  # bf16 | fp16 | fp32
    reason: str = ""

    @property
    def dtype(self) -> Any:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.name]


@dataclass(frozen=True)
class Timings:
    """Seconds the probe's work took in each precision (the fastest of its runs), and how far the two
    fastest runs of one precision were apart (the larger ratio of the two precisions)."""

    fp32_s: float
    bf16_s: float
    spread: float = 1.0

    @property
    def speedup(self) -> float:
        return self.fp32_s / self.bf16_s


def decide(workload: str, timings: Timings, source: str = "") -> Precision:
    """bf16 when the probe found it clearly faster than fp32 for `workload`, in runs that agree; else fp32."""
    speedup = timings.speedup
    name = "bf16" if speedup >= SPEEDUP_NEEDED and steady(timings) else "fp32"
    reason = (f"auto: probe of {WORKLOADS[workload]} on this CPU took {timings.bf16_s * 1000:.0f} ms in bf16, "
              f"{timings.fp32_s * 1000:.0f} ms in fp32 (bf16 {speedup:.2f}x; picked only at "
              f">= {SPEEDUP_NEEDED}x)")
    if not steady(timings):
        reason += f", but its runs disagreed by {timings.spread:.2f}x (a busy machine), so fp32"
    return Precision(name, f"{reason}{'; ' + source if source else ''}")


def steady(timings: Timings) -> bool:
    return timings.spread <= MAX_SPREAD


def agreement(picked: str, speedup: float) -> str:
    """Whether `picked` fits a measured bf16 speedup over fp32 (for the benches that check the probe)."""
    fits = speedup > 1 if picked == "bf16" else speedup < SPEEDUP_NEEDED
    return (f"measured bf16 {speedup:.2f}x fp32; auto picked {picked}: "
            f"{'consistent' if fits else 'INCONSISTENT'} with the measurement")


def for_cuda(bf16_supported: bool) -> Precision:
    if bf16_supported:
        return Precision("bf16", "auto: CUDA device with bf16 support")
    return Precision("fp16", "auto: CUDA device without bf16 support")


def auto(workload: str, probe: Callable[[str], Timings] | None = None) -> Precision:
    """The precision `auto` means for `workload` here; on CPU, probes (or reads the cached probe)."""
    import torch

    if torch.cuda.is_available():
        return for_cuda(torch.cuda.is_bf16_supported())
    if probe is None:
        from .precision_probe import measure as probe
    key = machine_key()
    path = cache_path(key)
    cached = _read(path).get(workload)
    try:
        return decide(workload, Timings(float(cached["fp32_s"]), float(cached["bf16_s"]),
                                        float(cached.get("spread", 1.0))),
                      f"cached {cached['measured']} in {path}")
    except (TypeError, KeyError, ValueError, ZeroDivisionError):
        pass  # none yet, or unreadable: measure
    started = time.monotonic()
    try:
        timings = probe(workload)
    except Exception as exc:  # noqa: BLE001 - any failure of bf16 here is a reason to stay in fp32
        return Precision("fp32", f"auto: the bf16 probe of {WORKLOADS[workload]} failed "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
    took = f"measured now in {time.monotonic() - started:.1f} s"
    if not steady(timings):
        return decide(workload, timings, f"{took}, not cached")
    _write(path, key, workload, timings)
    return decide(workload, timings, f"{took}, cached in {path}")


def machine_key() -> dict[str, Any]:
    import torch

    model, flags = _cpu()
    return {"cpu": model, "flags": hashlib.sha256(flags.encode()).hexdigest()[:16], "torch": torch.__version__,
            "threads": torch.get_num_threads(), "isa": {k: os.environ[k] for k in ISA_ENV if os.environ.get(k)},
            "omp": {k: os.environ[k] for k in OMP_ENV if os.environ.get(k)}, "probe": PROBE_VERSION}


def cache_path(key: dict[str, Any]) -> Path:
    from .models import cache_dir

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "precision" / f"{digest}.json"


def _cpu() -> tuple[str, str]:
    """The CPU's model name and feature flags (Linux /proc/cpuinfo; elsewhere what platform knows)."""
    model, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            name = name.strip()
            if name in ("model name", "Processor") and not model:  # x86 | arm
                model = value.strip()
            elif name in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
            if model and flags:
                break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, key: dict[str, Any], workload: str, timings: Timings) -> None:
    data = _read(path)
    data["key"] = key
    data[workload] = {"fp32_s": timings.fp32_s, "bf16_s": timings.bf16_s, "spread": timings.spread,
                      "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)  # whole or not at all, also when two jobs probe at once
    except OSError as exc:
        log.warning("could not cache the precision probe in %s: %s", path, exc)
