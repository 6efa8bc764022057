# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test lint crds bench clean

$(VENV)/.demo-installed: pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV) demo
	touch $@

$(VENV)/.test-installed: pyproject.toml scripts/bootstrap.sh scripts/install_k8s_tools.py
	bash scripts/bootstrap.sh $(VENV) test
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/kubetune run manifests/examples/quickstart.yaml

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .

test: $(VENV)/.test-installed lint
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
