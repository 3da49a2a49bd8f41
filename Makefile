# Microplex-US: `make build` builds the national dataset, `make test` runs every test.
PYTHON_BASE ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(abspath dagster_home)

PRODUCT ?= national
GEOGRAPHY ?= US
HOUSEHOLDS ?=
YEAR ?=
SETTINGS ?=

.PHONY: build test ui lint backfill benchmark benchmark-calibration benchmark-solver-speed benchmark-local benchmark-local-solver benchmark-suite clean-artifacts

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned, so nothing pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

build: $(VENV)/.installed
	PRODUCT=$(PRODUCT) GEOGRAPHY=$(GEOGRAPHY) HOUSEHOLDS=$(HOUSEHOLDS) YEAR=$(YEAR) SETTINGS='$(SETTINGS)' \
		$(PY) -m microplex_assets.runner

# All 51 local|<state> shards (two at a time), their national|<state> fallbacks and the
# local|US fan-in; needs national|US built first (`make build`). STATES=CA,TX for a few.
STATES ?=
backfill: $(VENV)/.installed
	$(PY) -m microplex_assets.backfill $(if $(STATES),--states $(STATES),)

test: $(VENV)/.installed
	$(PY) -m pytest -ra

ui: $(VENV)/.installed
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

benchmark: $(VENV)/.installed
	$(PY) benchmarks/build.py

# Train / validation / test loss, ESS, largest weight ratio, share within 10% and seconds of
# the design weights, the eCPS method, ours (as the build runs it) and microcalibrate, on
# the matrix and split `make build` saved.
benchmark-calibration: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[benchmark]"
	$(PY) benchmarks/calibration_split.py --only ecps ours_default microcalibrate

# Time-to-loss and peak memory of the solvers on the build's matrix (no split).
benchmark-solver-speed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[benchmark]"
	$(PY) benchmarks/calibration.py --from-build

# The 51-shard backfill with per-shard wall time, peak memory and shard-vs-fallback loss.
benchmark-local: $(VENV)/.installed
	$(PY) benchmarks/local.py

benchmark-local-solver: $(VENV)/.installed
	$(PY) benchmarks/local_solver.py

# The stage-9 reform suite on the last build's H5 pair (per reform households, seconds and
# impacts on both weight vectors, gates, peak RSS); SUITE_ARGS='--households 3000' samples.
benchmark-suite: $(VENV)/.installed
	$(PY) benchmarks/microsim_suite.py $(SUITE_ARGS)

clean-artifacts:
	rm -rf dagster_home/artifacts dagster_home/storage
