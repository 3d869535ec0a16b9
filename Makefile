# routereval: `make demo` and `make test` do all of their set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
DEMO_DIR ?= demo_out

.PHONY: setup demo test bench clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo's sweep: the paper's Tables 1-2 grid on the small synthetic corpus, without the fine-tuned
# MLC router (minutes per cell on a CPU) and with LinearR/MLPR in batches of 256 (the reference's
# batch 1 takes hours on a CPU); a few minutes on 2 cores.
DEMO_SWEEP := --set corpus=$(abspath $(DEMO_DIR))/small --set routers.mlc=false \
	--set routers.linear.batch_size=256 --set routers.mlp.batch_size=256

demo: setup
	$(VENV)/bin/routereval data synth --scale small --seed 0 --out $(DEMO_DIR)/small
	$(VENV)/bin/routereval data info $(DEMO_DIR)/small
	$(VENV)/bin/routereval sweep examples/sweeps/paper.toml $(DEMO_SWEEP) --workers 2 --out $(DEMO_DIR)/results
	$(VENV)/bin/routereval report $(DEMO_DIR)/results --benchmarks mmlu,gsm8k
	$(VENV)/bin/routereval scaling $(DEMO_DIR)/small --benchmark mmlu --protocol both --out $(DEMO_DIR)/scaling
	$(VENV)/bin/routereval coldstart $(DEMO_DIR)/small --benchmark mmlu --router irt --m 10 --group strong_to_weak \
	  --anchors 10,25,50,100 --method random,irt,fisher,adaptive --seeds 3 --pretrain corpus --out $(DEMO_DIR)/coldstart
	$(VENV)/bin/routereval report $(DEMO_DIR)/results --format html --scaling $(DEMO_DIR)/scaling \
	  --coldstart $(DEMO_DIR)/coldstart --out $(DEMO_DIR)/report.html
	@echo "scaling plot: $(abspath $(DEMO_DIR))/scaling (PNG and SVG)"
	@echo "cold start:   $(abspath $(DEMO_DIR))/coldstart (summary.md, coldstart.csv, plots)"
	@echo "HTML report:  $(abspath $(DEMO_DIR))/report.html"

# The HTML report's tests render it in a real headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null)

test: setup browser
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
