"""The alert rules (charts/kubetune/alerts/kubetune.rules.yaml) pass `promtool check rules`, and their unit
tests (tests/fixtures/alerts/kubetune.rules.test.yaml: each alert fires where it must and stays quiet
beside it) pass `promtool test rules`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "kubetune" / "alerts" / "kubetune.rules.yaml"
RULE_TESTS = ROOT / "tests" / "fixtures" / "alerts" / "kubetune.rules.test.yaml"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="Debian's prometheus (promtool) is installed by "
                                                         "scripts/bootstrap.sh")


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=ROOT)


def alerts() -> list[str]:
    return [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_rules_check() -> None:
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in out.stdout


def test_rule_unit_tests_pass_and_cover_every_alert() -> None:
    out = promtool("test", "rules", str(RULE_TESTS))
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for t in tests for case in t["alert_rule_test"] if not case["exp_alerts"]}
    assert fired == quiet == set(alerts())


def test_a_broken_rule_unit_test_fails(tmp_path: Path) -> None:
    """The harness can fail: the same tests expecting a failed run to stay quiet do not pass."""
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(RULES)]
    for case in tests["tests"][0]["alert_rule_test"]:
        case["exp_alerts"] = []
    broken = tmp_path / "broken.test.yaml"
    broken.write_text(yaml.safe_dump(tests))
    out = promtool("test", "rules", str(broken))
    assert out.returncode != 0 and "KubetuneRunFailed" in out.stdout + out.stderr
