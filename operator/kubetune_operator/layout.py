"""The one home of artifact paths. Every URI a step reads or writes is built here.

    <root>/<namespace>/<run>/
        data/<stage>/{train,eval}.jsonl, stats.json
        stages/<stage>/{checkpoints/step-<n>/, adapter/, merged/, progress.json}
        eval/<label>/{report.json, report.md}
        manifest.json

`root` is `s3://<bucket>` in a cluster or a local directory for `kubetune run`.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPLETE_MARKER = "_COMPLETE"  # same name as kubetune_jobs.storage.COMPLETE_MARKER (the jobs write it)


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for part in parts:
        if part.strip("/"):
            out += "/" + part.strip("/")
    return out


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
        return join(self.data(stage), "stats.json")

    def stage(self, stage: str) -> str:
        return join(self.root, "stages", stage)

    def checkpoints(self, stage: str) -> str:
        return join(self.stage(stage), "checkpoints")

    def adapter(self, stage: str) -> str:
        return join(self.stage(stage), "adapter")

    def merged(self, stage: str) -> str:
        return join(self.stage(stage), "merged")

    def progress(self, stage: str) -> str:
        return join(self.stage(stage), "progress.json")

    def eval(self, label: str) -> str:
        return join(self.root, "eval", label)

    def report(self, label: str) -> str:
        return join(self.eval(label), "report.json")

    @property
    def manifest(self) -> str:
        return join(self.root, "manifest.json")


def store_root(bucket: str) -> str:
    """The root URI of a run's artifacts in a cluster (`s3://<bucket>`)."""
    return f"s3://{bucket}"
