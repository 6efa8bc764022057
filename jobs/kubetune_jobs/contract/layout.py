"""Artifact paths: every URI a step reads or writes is built here, by the operator and by the jobs.

    <root>/<namespace>/<run>/
        data/<stage>/{train.jsonl, eval.jsonl, stats.json}
        stages/<stage>/{checkpoints/step-<n>/, adapter/, merged/, progress.json, curve.json}
        eval/<label>/{report.json, report.md}
        summary.json, report.html            (written by `kubetune run`, `kubetune report`)

    <root>/<namespace>/serves/<serve>/       (a ModelServe's own results, per revision)
        bench/<revision>/bench.json
        eval/<revision>/{report.json, report.md, verdict.json}   (verdict: the gate's, `kubetune serve --against`)

`root` is `s3://<bucket>` in a cluster or a local directory for `kubetune run`. A directory of files
(a checkpoint, an adapter, a merged model) is complete only when its `_COMPLETE` marker is present:
the marker lists every file with its size and sha256 and is written last.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

COMPLETE_MARKER = "_COMPLETE"
# The most of a marker anyone reads (it comes from the store): an entry is ~150 bytes, a model lists tens of
# files, and 32 MiB holds the 100,000 a marker may list at most (`storage.MAX_DIR_FILES`) at over 300 each.
COMPLETE_MARKER_MAX_BYTES = 32 * 2**20

TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
STATS_FILE = "stats.json"
PREPARE_FILES = (TRAIN_FILE, EVAL_FILE)

PROGRESS_FILE = "progress.json"
CURVE_FILE = "curve.json"
CHECKPOINTS_DIR = "checkpoints"
ADAPTER_DIR = "adapter"
MERGED_DIR = "merged"

REPORT_FILE = "report.json"
BENCH_FILE = "bench.json"
PROBE_FILE = "probe.json"  # `kubetune-job probe`: its last round, rewritten every round
ADAPTER_SET_FILE = "adapters.json"  # the adapters every replica of a serve loads (`records.AdapterSet`)
BENCH_MARKDOWN = "bench.md"
REPORT_MARKDOWN = "report.md"
SUMMARY_FILE = "summary.json"
SUMMARY_MAX_BYTES = 2**20  # a FineTuneRun object with its artifacts' URIs: a few KiB
VERDICT_FILE = "verdict.json"
VERDICT_MAX_BYTES = 2**20  # the gate's rows, one per criterion and suite: a few KiB
HTML_REPORT = "report.html"

# ASCII digits only, and few enough that int() cannot choke: the names come from the store.
_STEP_DIR = re.compile(r"step-([0-9]{1,12})", re.ASCII)


def marker_digest(*markers: bytes) -> str:
    """The content id of one or more complete directories: a digest of their `_COMPLETE` markers (which hold
    every file's sha256), so the same files give the same id wherever they are stored."""
    h = hashlib.sha256()
    for m in markers:
        h.update(hashlib.sha256(m).digest())
    return h.hexdigest()


def checkpoint_dir(step: int) -> str:
    """The name of checkpoint `step`'s directory under `checkpoints/`."""
    return f"step-{step}"


def checkpoint_step(name: str) -> int | None:
    """The step of a checkpoint directory name, or None for any other name."""
    match = _STEP_DIR.fullmatch(name)
    return int(match.group(1)) if match else None


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for part in parts:
        if part.strip("/"):
            out += "/" + part.strip("/")
    return out


def store_root(bucket: str) -> str:
    """The root URI of the runs' artifacts in a bucket (`s3://<bucket>`)."""
    return f"s3://{bucket}"


@dataclass(frozen=True)
class RunLayout:
    """Artifact URIs of one run: `RunLayout.of(root_uri, namespace, run)`."""

    root: str  # <root_uri>/<namespace>/<run>

    @classmethod
    def of(cls, root_uri: str, namespace: str, run: str) -> RunLayout:
        return cls(join(root_uri, namespace, run))

    def data(self, stage: str) -> str:
        return join(self.root, "data", stage)

    def stats(self, stage: str) -> str:
        return join(self.data(stage), STATS_FILE)

    def stage(self, stage: str) -> str:
        return join(self.root, "stages", stage)

    def checkpoints(self, stage: str) -> str:
        return join(self.stage(stage), CHECKPOINTS_DIR)

    def adapter(self, stage: str) -> str:
        return join(self.stage(stage), ADAPTER_DIR)

    def merged(self, stage: str) -> str:
        return join(self.stage(stage), MERGED_DIR)

    def progress(self, stage: str) -> str:
        return join(self.stage(stage), PROGRESS_FILE)

    def curve(self, stage: str) -> str:
        return join(self.stage(stage), CURVE_FILE)

    def eval(self, label: str) -> str:
        return join(self.root, "eval", label)

    def report(self, label: str) -> str:
        return join(self.eval(label), REPORT_FILE)

    @property
    def summary(self) -> str:
        return join(self.root, SUMMARY_FILE)

    @property
    def html_report(self) -> str:
        return join(self.root, HTML_REPORT)


@dataclass(frozen=True)
class ServeLayout:
    """Result URIs of one ModelServe: `ServeLayout.of(root_uri, namespace, serve)`."""

    root: str  # <root_uri>/<namespace>/serves/<serve>

    @classmethod
    def of(cls, root_uri: str, namespace: str, serve: str) -> ServeLayout:
        return cls(join(root_uri, namespace, "serves", serve))

    def bench(self, revision: str) -> str:
        return join(self.root, "bench", revision)

    def bench_file(self, revision: str) -> str:
        return join(self.bench(revision), BENCH_FILE)

    def eval(self, revision: str) -> str:
        return join(self.root, "eval", revision)

    def probe(self, revision: str) -> str:
        return join(self.root, "probe", revision)

    @property
    def adapter_replicas(self) -> str:
        """Where each replica's adapter agent writes `<replica>.json` (`records.ReplicaAdapters`)."""
        return join(self.root, "adapters", "replicas")

    def adapter_replica(self, replica: str) -> str:
        return join(self.adapter_replicas, f"{replica}.json")

    def probe_file(self, revision: str) -> str:
        return join(self.probe(revision), PROBE_FILE)

    def report(self, revision: str) -> str:
        return join(self.eval(revision), REPORT_FILE)

    def verdict(self, revision: str) -> str:
        return join(self.eval(revision), VERDICT_FILE)
