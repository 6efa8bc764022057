"""Cases of the invalid-manifest corpus against the operator really running (kopf) on kopf's emulator (kmock):
each is created as it is (on a cluster whose CRDs are outdated and check no spec field) and must get
Succeeded=False / Ready=False naming the field `kubetune validate` names (tests/unit/test_invalid_manifests.py
runs the whole corpus there, and the operator's parse + problems on it), and nothing may start for it.

A chosen dozen, one of each way a message went wrong: the emulator serves every object's 0.3 s resync from one
event loop, and the whole corpus (86 spec cases) takes minutes there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kubetune_operator.apitypes import API_VERSION, read_documents
from kubetune_operator.finetunerun import api as ftr_api
from kubetune_operator.modelserve import api as ms_api
from support.kmock_cluster import EmulatedCluster, OperatorThread, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_invalid_manifests import EXPECTED, INVALID  # noqa: E402

NS = "default"
CASES = ("ftr-markup-close-key", "ftr-long-key", "ftr-gpus-float", "ftr-toleration-seconds", "ftr-node-selector-key",
         "ftr-image-no-tag", "ftr-snake-case", "ms-markup-key", "ms-replicas-string", "ms-extra-args-underscore",
         "ms-extra-args-lora-module", "ms-extra-args-negation",
         "ms-toleration-exists-value", "ms-vllm-image-uppercase", "ms-monitoring-label", "ms-served-name-space")
# The condition that says a resource will not run, per kind.
VERDICT = {ftr_api.KIND: (ftr_api.PLURAL, "Succeeded"), ms_api.KIND: (ms_api.PLURAL, "Ready")}


def spec_cases() -> dict[str, tuple[dict[str, Any], str, str]]:
    """name -> (the object as the API would hold it, field, word) for each of CASES."""
    out = {}
    for name in CASES:
        file = f"{name}.yaml"
        field, word = EXPECTED[file]
        (doc,) = read_documents(INVALID / file)
        assert field.startswith("spec") and isinstance(doc["spec"], dict), name
        json.dumps(doc["spec"])  # what an API server holds is JSON
        out[name] = ({"apiVersion": API_VERSION, "kind": doc["kind"], "metadata": {"name": name, "namespace": NS},
                      "spec": doc["spec"]}, field, word)
    return out


def test_the_operator_names_the_field_of_every_spec_case() -> None:
    cases = spec_cases()
    kinds = [obj["kind"] for obj, _, _ in cases.values()]
    assert kinds.count(ftr_api.KIND) >= 5 and kinds.count(ms_api.KIND) >= 5, kinds
    with EmulatedCluster(outdated_crds=True) as cluster:
        for obj, _, _ in cases.values():
            cluster.create(obj)
        with OperatorThread(cluster.url):
            for name, (obj, field, word) in cases.items():
                plural, verdict = VERDICT[obj["kind"]]

                def refused(n: str = name, p: str = plural, v: str = verdict) -> dict | None:
                    found = cluster.get(API_VERSION, p, NS, n) or {}
                    conds = (found.get("status") or {}).get("conditions") or []
                    return next((c for c in conds if c["type"] == v and c["status"] == "False"), None)

                cond = wait_for(refused, timeout=30, what=f"{name}: {verdict}=False")
                assert cond["reason"] == "InvalidSpec", (name, cond)
                message = cond["message"]
                assert message.startswith(f"{field}:") or f"; {field}:" in message, (name, field, message)
                assert word.lower() in message.lower(), (name, word, message)
        assert cluster.jobs(NS) == [], "an invalid resource must not start any Job"
        assert cluster.list("apps/v1", "deployments", NS) == [], "an invalid ModelServe must not deploy"
