"""`kubetune gate SERVE_MANIFEST --candidate REPORT.json [--serving REPORT.json]`: the operator's promotion
gate on two evaluation reports, outside the cluster (a GitOps pipeline gates before it commits a model change).

The manifest's `spec.promotion` gives the suites and thresholds; `promotion.gate` decides, as the operator
and `kubetune serve --against` do. Without `--serving` it is a first rollout: the candidate's own figures
are checked and nothing is compared, and the verdict says so. A gate with serving objectives also reads
both models' bench.json (`--candidate-bench`, `--serving-bench`).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from kubetune_operator.apitypes import SpecError
from kubetune_operator.modelserve import promotion

PROMOTE, UNUSABLE, REJECTED = 0, 2, 3

EXIT_CODES = f"""\
exit status:
  {PROMOTE}  promote: every criterion passed
  {REJECTED}  rejected: the reports were read and the gate says no; this includes an incomplete evaluation,
     a gated suite missing from either report, and a figure that is not a number in [0, 1] (NaN, 7.5,
     true, "0.9")
  {UNUSABLE}  unusable input, nothing judged: the manifest cannot be read or is invalid, or names no gate
     (spec.promotion.enabled false), or a report cannot be read or is not an evaluation report at all
     (missing file, not JSON, larger than {promotion.MAX_REPORT_BYTES} bytes, nested too deeply, no
     `complete` or `suites`); likewise a benchmark the gate's serving objectives need (no `levels`)
"""


def read_file(path: Path) -> promotion.Evidence:
    """A report's or a benchmark's file, its bytes, or why it cannot be read (a huge file is refused without
    reading it whole)."""
    try:
        with path.open("rb") as f:
            data = f.read(promotion.MAX_REPORT_BYTES + 1)
    except OSError as exc:
        return promotion.Unreadable(f"{path}: {exc.strerror or exc}")
    if len(data) > promotion.MAX_REPORT_BYTES:
        return promotion.Unreadable(f"{path}: larger than the {promotion.MAX_REPORT_BYTES} bytes a report may hold")
    return data


def exit_code(verdict: promotion.Verdict) -> int:
    if verdict.passed:
        return PROMOTE
    return UNUSABLE if verdict.unusable else REJECTED


def show(verdict: promotion.Verdict, console: Console) -> None:
    """The verdict table, then one line: the decision and why."""
    console.print(verdict.table(), markup=False, highlight=False, soft_wrap=True)
    if not verdict.compared:
        console.print("no serving model yet (first rollout): the candidate's own figures were checked, nothing "
                      "was compared", markup=False, soft_wrap=True)
    if verdict.passed:
        console.print("gate: promoted", markup=False)
    else:
        word = "unusable input" if verdict.unusable else "rejected"
        console.print(f"gate: {word}: " + "; ".join(verdict.reasons), markup=False, highlight=False, soft_wrap=True)


def run(manifest: Path, candidate: Path, serving: Path | None, console: Console, *,
        candidate_bench: Path | None = None, serving_bench: Path | None = None) -> int:
    from .serve import load

    try:
        serve = load(manifest)
    except SpecError as exc:
        console.print(f"gate: unusable input: {exc}", markup=False, highlight=False, soft_wrap=True)
        return UNUSABLE
    if not serve.spec.promotion.enabled:
        console.print(f"gate: unusable input: {manifest}: spec.promotion.enabled is false, so this ModelServe "
                      "has no gate (the operator rolls out any model change); enable it to gate", markup=False,
                      soft_wrap=True)
        return UNUSABLE
    g = serve.spec.promotion.gate
    if g.objectives() and (candidate_bench is None or (serving is not None and g.min_throughput_ratio is not None
                                                       and serving_bench is None)):
        console.print("note: spec.promotion.gate has serving objectives: they read the candidate's bench.json "
                      "(--candidate-bench)" + (" and the serving model's (--serving-bench)"
                                               if g.min_throughput_ratio is not None else ""), markup=False,
                      soft_wrap=True)
    verdict = promotion.gate(serve.spec.promotion, read_file(candidate),
                             read_file(serving) if serving is not None else promotion.NO_SERVING_MODEL,
                             read_file(candidate_bench) if candidate_bench else None,
                             read_file(serving_bench) if serving_bench else None)
    show(verdict, console)
    return exit_code(verdict)
