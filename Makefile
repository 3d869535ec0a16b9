# routereval: `make demo` and `make test` do all of their set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
DEMO_DIR ?= demo_out

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

DEMO_ROUTERS := oracle,random,best_single,linear,mlp,kmeans,knn,mf,irt

demo: setup
	$(VENV)/bin/routereval data synth --scale small --seed 0 --out $(DEMO_DIR)/small
	$(VENV)/bin/routereval data info $(DEMO_DIR)/small
	$(VENV)/bin/routereval pools $(DEMO_DIR)/small --benchmark mmlu --protocol paper --m 3,5,10
	$(VENV)/bin/routereval pools $(DEMO_DIR)/small --benchmark mmlu --protocol clean --m 3,5,10
	$(VENV)/bin/routereval eval $(DEMO_DIR)/small --benchmark mmlu --m 5 --group strong_to_weak --router $(DEMO_ROUTERS)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
