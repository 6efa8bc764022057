# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
VENV ?= .venv
# vLLM (CPU build) in a venv of its own: it pins a transformers older than the project's.
VLLM_VENV ?= .venv-vllm
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (0: in this process). Two keep both cores of a small machine busy
# while one test waits on a server or a subprocess; tests/conftest.py says how the work is grouped.
PYTEST_WORKERS ?= 2

.PHONY: demo demo-full calibrate serve test envs lint clean images manifests vllm-env

$(VENV)/.demo-installed: pyproject.toml scripts/bootstrap.sh scripts/pyinstall.sh
	bash scripts/bootstrap.sh $(VENV) demo
	touch $@

$(VENV)/.test-installed: pyproject.toml scripts/bootstrap.sh scripts/pyinstall.sh scripts/install_k8s_tools.py
	bash scripts/bootstrap.sh $(VENV) test
	touch $@ $(VENV)/.demo-installed

$(VLLM_VENV)/.installed: scripts/install_vllm.sh scripts/pyinstall.sh
	bash scripts/install_vllm.sh $(VLLM_VENV)
	touch $@

vllm-env: $(VLLM_VENV)/.installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/kubetune run manifests/examples/quickstart.yaml

# The same pipeline tuned for learning rather than time (several times as long; BENCHMARKS.md).
demo-full: $(VENV)/.demo-installed
	$(VENV)/bin/kubetune run manifests/examples/quickstart-full.yaml

# The machine's speed now, as one figure (training tokens/s of a fixed piece of work): put it beside a timing.
calibrate: $(VENV)/.demo-installed
	$(VENV)/bin/python bench/calibrate.py

# After the demo: its tuned model behind vLLM's OpenAI-compatible API (Ctrl-C stops).
serve: $(VENV)/.demo-installed $(VLLM_VENV)/.installed
	$(VENV)/bin/kubetune serve manifests/examples/quickstart-serve.yaml

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .

# Both environments at once (one's downloads overlap the other's unpacking); each progress line names its venv.
envs:
	$(MAKE) --no-print-directory -j2 $(VENV)/.test-installed $(VLLM_VENV)/.installed

# OMP_WAIT_POLICY=PASSIVE: the two workers' torch threads (and the jobs they start) share the cores, and a
# spinning wait holds the core another needs (BENCHMARKS.md, "OpenMP wait policy").
test: envs
	$(MAKE) --no-print-directory lint
	PATH="$(abspath $(VENV))/bin:$$PATH" KUBETUNE_VLLM_PYTHON="$(abspath $(VLLM_VENV))/bin/python" OMP_WAIT_POLICY=PASSIVE \
		$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# Container images of the operator and the jobs (needs docker; the chart's appVersion is the tag).
IMAGE_REGISTRY ?= ghcr.io/kubetune
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*/\1/p' charts/kubetune/Chart.yaml)
DOCKER ?= docker
images:
	$(DOCKER) build -f operator/Dockerfile -t $(IMAGE_REGISTRY)/kubetune-operator:$(IMAGE_TAG) .
	$(DOCKER) build -f jobs/Dockerfile -t $(IMAGE_REGISTRY)/kubetune-jobs:$(IMAGE_TAG) .

# manifests/kustomization.yaml and manifests/install/ from the chart (for installs without Helm).
manifests: $(VENV)/.test-installed
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/render_manifests.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
