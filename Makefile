# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
VENV ?= .venv
# vLLM (CPU build) in a venv of its own: it pins a transformers older than the project's.
VLLM_VENV ?= .venv-vllm
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test lint crds bench clean vllm-env

$(VENV)/.demo-installed: pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV) demo
	touch $@

$(VENV)/.test-installed: pyproject.toml scripts/bootstrap.sh scripts/install_k8s_tools.py
	bash scripts/bootstrap.sh $(VENV) test
	touch $@ $(VENV)/.demo-installed

$(VLLM_VENV)/.installed: scripts/install_vllm.sh
	bash scripts/install_vllm.sh $(VLLM_VENV)
	touch $@

vllm-env: $(VLLM_VENV)/.installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/kubetune run manifests/examples/quickstart.yaml

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .

test: $(VENV)/.test-installed $(VLLM_VENV)/.installed lint
	PATH="$(abspath $(VENV))/bin:$$PATH" KUBETUNE_VLLM_PYTHON="$(abspath $(VLLM_VENV))/bin/python" \
		$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
