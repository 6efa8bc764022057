"""`kubetune report TARGET`: one self-contained HTML page of a run or a serve, from the records in its store.

TARGET is a run's directory (what `kubetune run` wrote: `<store>/<namespace>/<run>`), a run in the object
store (`s3://<bucket>/<namespace>/<run>`, the endpoint and keys from the environment as for the jobs), or a
ModelServe's records (`.../<namespace>/serves/<serve>`).

A run's page: the before/after accuracy per suite and per BFCL category, the false- and missed-call rates,
the loss and eval-loss curves and tokens/s of every training stage, a few evaluation items as the models
answered them before and after, and where the artifacts are. A serve's page: each revision's benchmark
(output tokens/s and time to first token against concurrency), its evaluation and the gate's verdicts.

No network, no script: the charts are inline SVG (`charts`) and a Content-Security-Policy forbids loading
anything. Every record is read with a size cap and checked as its type; what cannot be read is said on
the page, never guessed.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from html import escape
from typing import Any

from kubetune_jobs import storage
from kubetune_jobs.contract import records
from kubetune_jobs.contract.layout import (
    BENCH_FILE,
    CURVE_FILE,
    HTML_REPORT,
    PROGRESS_FILE,
    REPORT_FILE,
    STATS_FILE,
    SUMMARY_FILE,
    VERDICT_FILE,
    join,
)
from kubetune_jobs.contract.store import resolve

from .charts import Series, bar_chart, line_chart

MAX_RECORD_BYTES = 4 * 2**20  # progress, curve, stats, summary, bench
MAX_REPORT_BYTES = 64 * 2**20  # an evaluation report holds every item's raw answer
EXAMPLES_PER_SUITE = 3
RATES = (("false_call_rate", "false-call rate"), ("missed_call_rate", "missed-call rate"))


class ReportError(RuntimeError):
    """TARGET is not a run or a serve this command can read; the message says why."""


@dataclass
class Page:
    """What the page says, section by section, and what could not be read."""

    title: str
    sections: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Reader:
    """Bounded, typed reads under one root; a failure is noted for the page, never raised."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.access = resolve() if storage.is_remote(root) else None
        if storage.is_remote(root) and self.access is None:
            raise ReportError(f"{root}: no object store endpoint (set the S3 endpoint variable the jobs read)")
        self.problems: list[str] = []

    def location(self, *parts: str) -> storage.Location:
        return storage.location(join(self.root, *parts), self.access)

    def names(self, *parts: str) -> list[str]:
        try:
            return self.location(*parts).list()
        except (OSError, storage.StorageError) as exc:
            self.problems.append(f"listing {join(self.root, *parts)}: {exc}")
            return []

    def json(self, *parts: str, limit: int = MAX_RECORD_BYTES) -> Any:
        loc = self.location(*parts)
        try:
            return json.loads(loc.read_bytes(limit=limit))
        except FileNotFoundError:
            return None
        except (OSError, storage.StorageError, ValueError) as exc:
            self.problems.append(f"{loc.uri}: {exc}")
            return None

    def record(self, record: type[records.R], *parts: str) -> records.R | None:
        raw = self.json(*parts)
        parsed = records.read(record, raw)
        if raw is not None and parsed is None:
            self.problems.append(f"{join(self.root, *parts)} is not a {record.__name__} record")
        return parsed


# ---------------------------------------------------------------- figures

def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _pct(value: Any) -> str:
    v = _finite(value)
    return "–" if v is None else f"{v * 100:.1f}%"


def _figure(report: dict[str, Any], suite: str, key: str, category: str | None = None) -> float | None:
    agg = (report.get("suites") or {}).get(suite) or {}
    if category is not None:
        agg = (agg.get("categories") or {}).get(category) or {}
    return _finite(agg.get(key)) if isinstance(agg, dict) else None


def _suites(reports: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out: list[str] = []
    for _, r in reports:
        for suite in r.get("suites") or {}:
            if suite not in out:
                out.append(suite)
    return out


def _tool_suites(reports: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [s for s in _suites(reports) if any(_figure(r, s, "accuracy") is not None for _, r in reports)]


# ---------------------------------------------------------------- sections

def _table(head: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already (escape text before)."""
    return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
            + "</tbody></table>")


def accuracy_section(reports: list[tuple[str, dict[str, Any]]]) -> str:
    if not reports:
        return "<h2>Evaluation</h2><p>No evaluation report was found.</p>"
    labels = [label for label, _ in reports]
    suites = _tool_suites(reports)
    parts = ["<h2>What the model learned</h2>",
             "<p>Accuracy per suite, each column one evaluation in the order the run made them.</p>",
             bar_chart("Accuracy per suite", suites,
                       [(label, [_figure(r, s, "accuracy") for s in suites]) for label, r in reports],
                       y_label="accuracy")]
    rows = []
    for suite in suites:
        for key, title in (("accuracy", "accuracy"), *RATES):
            cells = []
            for _, r in reports:
                text = _pct(_figure(r, suite, key))
                agg = (r.get("suites") or {}).get(suite) or {}
                if key == "accuracy" and isinstance(agg.get("passed"), int) and isinstance(agg.get("items"), int):
                    text += f" ({agg['passed']}/{agg['items']})"
                cells.append(escape(text))
            if any(c != "–" for c in cells):
                rows.append([escape(suite), escape(title), *cells])
    parts.append(_table(["suite", "figure", *map(escape, labels)], rows))
    for key, title in RATES:
        values = [(label, [_figure(r, s, key) for s in suites]) for label, r in reports]
        if any(v is not None for _, vs in values for v in vs):
            parts.append(bar_chart(f"{title.capitalize()} per suite (lower is better)", suites, values,
                                   y_label=title))
    for suite in suites:
        categories = sorted({c for _, r in reports for c in ((r.get("suites") or {}).get(suite) or {})
                             .get("categories") or {}})
        if len(categories) > 1:
            parts.append(bar_chart(f"{suite}: accuracy per category", categories,
                                   [(label, [_figure(r, suite, "accuracy", c) for c in categories])
                                    for label, r in reports], y_label="accuracy"))
    incomplete = [label for label, r in reports if r.get("complete") is not True]
    if incomplete:
        parts.append(f"<p class='warn'>Incomplete evaluations (figures cover a partial run): "
                     f"{escape(', '.join(incomplete))}</p>")
    return "".join(parts)


def training_section(stages: list[tuple[str, records.TrainingCurve | None, records.Progress | None]]) -> str:
    if not stages:
        return ""
    parts = ["<h2>Training</h2>"]
    for name, curve, progress in stages:
        points = curve.points if curve else []
        parts.append(f"<h3>Stage {escape(name)}</h3>")
        if progress is not None:
            facts = [f"state {progress.state}", f"step {progress.step}/{progress.total or '?'}"]
            if progress.eval_loss_start is not None and progress.eval_loss is not None:
                facts.append(f"held-out loss {progress.eval_loss_start:.3f} → {progress.eval_loss:.3f}")
            if progress.tokens_per_second:
                facts.append(f"{progress.tokens_per_second:.0f} tok/s")
            if progress.precision:
                facts.append(f"trained in {progress.precision}")
            parts.append(f"<p>{escape(', '.join(facts))}</p>")
        if not points:
            parts.append("<p>No training curve was recorded for this stage.</p>")
            continue
        parts.append(line_chart(f"{name}: loss over steps", [
            Series("training loss", [(p.step, p.loss) for p in points if p.loss is not None]),
            Series("eval loss", [(p.step, p.eval_loss) for p in points if p.eval_loss is not None]),
        ], x_label="step", y_label="loss"))
        parts.append(line_chart(f"{name}: tokens per second", [
            Series("tokens/s", [(p.step, p.tokens_per_second) for p in points if p.tokens_per_second is not None]),
        ], x_label="step", y_label="tokens/s"))
    return "".join(parts)


def _calls(value: Any) -> str:
    if value in (None, []):
        return "no call"
    return json.dumps(value, ensure_ascii=False)[:600]


def _answer(item: dict[str, Any] | None) -> str:
    if item is None:
        return "<em>not evaluated</em>"
    verdict = "✓" if item.get("passed") else "✗"
    said = _calls(item.get("calls")) if item.get("calls") else (item.get("text") or "no call")[:600]
    reason = f" — {item['reason']}" if item.get("reason") and not item.get("passed") else ""
    return f"{verdict} <code>{escape(str(said))}</code>{escape(str(reason))[:300]}"


def examples_section(reports: list[tuple[str, dict[str, Any]]]) -> str:
    """A few items per suite as the first and the last evaluation answered them: those the training turned
    from wrong to right first, then any other change, then the rest."""
    if not reports:
        return ""
    (first_label, first), (last_label, last) = reports[0], reports[-1]
    pair = len(reports) > 1
    before = {it.get("id"): it for it in first.get("items") or [] if isinstance(it, dict)} if pair else {}
    after = [it for it in last.get("items") or [] if isinstance(it, dict) and it.get("passed") is not None]
    who = f"{escape(first_label)} and {escape(last_label)}" if pair else escape(last_label)
    parts = ["<h2>Examples</h2>", f"<p>How {who} answered a few items of each suite.</p>"]
    for suite in _tool_suites(reports):
        items = [it for it in after if it.get("suite") == suite]

        def rank(it: dict[str, Any]) -> int:
            was = (before.get(it.get("id")) or {}).get("passed")
            return 0 if (not was and it.get("passed")) else 1 if was != it.get("passed") else 2

        rows = []
        for it in sorted(items, key=rank)[:EXAMPLES_PER_SUITE]:
            rows.append([escape(str(it.get("question") or it.get("id"))[:800]),
                         f"<code>{escape(_calls(it.get('expected')))}</code>",
                         *([_answer(before.get(it.get("id")))] if pair else []), _answer(it)])
        if rows:
            parts.append(f"<h3>{escape(suite)}</h3>")
            labels = [escape(first_label)] if pair else []
            parts.append(_table(["request", "expected", *labels, escape(last_label)], rows))
    return "".join(parts)


def artifacts_section(rows: list[tuple[str, str]]) -> str:
    return "<h2>Artifacts</h2>" + _table(["what", "where"], [[escape(w), f"<code>{escape(u)}</code>"]
                                                           for w, u in rows])


# ---------------------------------------------------------------- a run

def _evaluations(reader: Reader, summary: dict[str, Any] | None, stages: list[str]) -> list[tuple[str, str]]:
    """(label, report URI) in the order the run made them."""
    if summary and isinstance(summary.get("reports"), dict):
        return [(str(k), str(v)) for k, v in summary["reports"].items()]
    labels = reader.names("eval")
    order = {"base": -1, **{s: i for i, s in enumerate(stages)}}
    return [(label, join(reader.root, "eval", label, REPORT_FILE))
            for label in sorted(labels, key=lambda lb: order.get(lb, len(order)))]


def run_page(reader: Reader) -> Page:
    summary = reader.json(SUMMARY_FILE)
    summary = summary if isinstance(summary, dict) else None
    spec = (summary or {}).get("spec") or {}
    stages = [s.get("name") for s in spec.get("stages") or [] if isinstance(s, dict) and s.get("name")] \
        or reader.names("stages")
    name = ((summary or {}).get("metadata") or {}).get("name") or reader.root.rsplit("/", 1)[-1]
    page = Page(f"kubetune run {name}")
    facts = [("base model", str(spec.get("baseModel") or "?")), ("stages", " → ".join(stages) or "?"),
             ("artifacts", reader.root)]
    page.sections.append("<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts) + "</dl>")

    reports = []
    for label, uri in _evaluations(reader, summary, stages):
        if not uri.startswith(reader.root + "/"):
            reader.problems.append(f"report {uri} is outside the run's directory: not read")
            continue
        report = reader.json(*uri[len(reader.root) + 1:].split("/"), limit=MAX_REPORT_BYTES)
        if isinstance(report, dict) and isinstance(report.get("suites"), dict):
            reports.append((label, report))
        elif report is not None:
            reader.problems.append(f"{uri} is not an evaluation report")
    page.sections.append(accuracy_section(reports))
    page.sections.append(training_section([
        (s, reader.record(records.TrainingCurve, "stages", s, CURVE_FILE),
         reader.record(records.Progress, "stages", s, PROGRESS_FILE)) for s in stages]))
    page.sections.append(examples_section(reports))
    rows = []
    for s in stages:
        stats = reader.json("data", s, STATS_FILE)
        kept = f" ({stats.get('train_rows', '?')} training rows)" if isinstance(stats, dict) else ""
        rows += [(f"data, {s}{kept}", join(reader.root, "data", s)),
                 (f"adapter, {s}", join(reader.root, "stages", s, "adapter")),
                 (f"merged model, {s}", join(reader.root, "stages", s, "merged"))]
    rows += [(f"evaluation, {label}", join(reader.root, "eval", label, REPORT_FILE)) for label, _ in reports]
    rows.append(("logs", join(reader.root, "logs")))
    page.sections.append(artifacts_section(rows))
    return page


# ---------------------------------------------------------------- a serve

def serve_page(reader: Reader) -> Page:
    name = reader.root.rsplit("/", 1)[-1]
    page = Page(f"kubetune serve {name}")
    benches = [(rev, reader.record(records.BenchReport, "bench", rev, BENCH_FILE)) for rev in reader.names("bench")]
    benches = [(rev, b) for rev, b in benches if b is not None]
    parts = ["<h2>Benchmark</h2>"]
    if benches:
        parts.append(line_chart("Output tokens per second against concurrency", [
            Series(rev[:12], [(lv.concurrency, lv.output_throughput) for lv in b.levels]) for rev, b in benches],
            x_label="concurrent requests", y_label="output tok/s"))
        parts.append(line_chart("Time to first token (p95) against concurrency", [
            Series(rev[:12], [(lv.concurrency, lv.ttft_p95_s * 1000) for lv in b.levels if lv.ttft_p95_s is not None])
            for rev, b in benches], x_label="concurrent requests", y_label="TTFT p95, ms"))
        rows = [[escape(rev[:12]), str(lv.concurrency), f"{lv.output_throughput:.1f}",
                 "–" if lv.ttft_p95_s is None else f"{lv.ttft_p95_s * 1000:.0f}", str(lv.failed)]
                for rev, b in benches for lv in b.levels]
        parts.append(_table(["revision", "concurrency", "output tok/s", "TTFT p95 ms", "failed"], rows))
    else:
        parts.append("<p>No benchmark was recorded.</p>")
    page.sections.append("".join(parts))
    reports = []
    for rev in reader.names("eval"):
        report = reader.json("eval", rev, REPORT_FILE, limit=MAX_REPORT_BYTES)
        if isinstance(report, dict) and isinstance(report.get("suites"), dict):
            reports.append((rev[:12], report))
    page.sections.append(accuracy_section(reports).replace("What the model learned", "Evaluations per revision"))
    verdicts = []
    for rev in reader.names("eval"):
        verdict = reader.json("eval", rev, VERDICT_FILE)
        if not isinstance(verdict, dict):
            continue
        rows = [r for r in verdict.get("rows") or [] if isinstance(r, dict)]
        verdicts.append(f"<h3>{escape(rev[:12])}: {escape(str(verdict.get('decision', '?')))}</h3>" + _table(
            ["criterion", "threshold", "candidate", "serving", "result"],
            [[escape(str(r.get(k, "")))[:300] for k in ("criterion", "threshold", "candidate", "serving")]
             + ["pass" if r.get("passed") is True else "FAIL"] for r in rows]))
    if verdicts:
        page.sections.append("<h2>Gate verdicts</h2>" + "".join(verdicts))
    page.sections.append(artifacts_section([(f"benchmark {rev[:12]}", join(reader.root, "bench", rev, BENCH_FILE))
                                            for rev, _ in benches]))
    return page


# ---------------------------------------------------------------- the page

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1180px;color:#1b1b1b;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}dl{display:grid;grid-template-columns:
max-content auto;gap:.2rem 1rem}dt{font-weight:600}table{border-collapse:collapse;margin:.8rem 0;font-size:14px}
td,th{border:1px solid #ddd;padding:.3rem .55rem;vertical-align:top;text-align:left}th{background:#f4f4f4}
code{font-size:12.5px;word-break:break-word}svg.chart{margin:.5rem 1rem .5rem 0;background:#fff}
svg .title{font-weight:600;font-size:14px}svg .tick,svg .legend,svg .label{font-size:11px;fill:#444}
svg .grid{stroke:#eee}svg .axis{stroke:#888}svg .empty{fill:#888}.warn{color:#a40000}footer{color:#777;
margin-top:3rem;font-size:13px}
"""


def render(page: Page, problems: list[str]) -> str:
    made = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = ("<h2>Not shown</h2><ul>" + "".join(f"<li>{escape(p)}</li>" for p in problems) + "</ul>") \
        if problems else ""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{escape(page.title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(page.title)}</h1>" + "".join(page.sections) + notes
            + f"<footer>Written by kubetune report, {made}.</footer></body></html>\n")


def is_serve(root: str) -> bool:
    return root.rstrip("/").rsplit("/", 2)[-2:-1] == ["serves"]


def build(root: str) -> str:
    """The page of the run or serve at `root` (a directory or an s3:// URI)."""
    reader = Reader(root)
    if not storage.is_remote(root) and not reader.location().exists():
        raise ReportError(f"{root}: no such directory")
    if is_serve(root):
        return render(serve_page(reader), reader.problems)
    if not reader.names("stages") and not reader.names("eval"):
        raise ReportError(f"{root}: neither a run (stages/, eval/) nor a serve (…/serves/<name>)")
    return render(run_page(reader), reader.problems)


def write(root: str, output: str | None = None) -> str:
    """Build the page and write it (default: `report.html` in the run's or serve's directory); its URI."""
    reader = Reader(root)
    target = storage.location(output) if output else storage.location(join(reader.root, HTML_REPORT), reader.access)
    target.write_bytes(build(root).encode("utf-8"))
    return target.uri
