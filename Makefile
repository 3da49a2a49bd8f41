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

.PHONY: build test ui lint backfill benchmark benchmark-faults benchmark-calibration benchmark-solver-speed benchmark-local benchmark-joint-local benchmark-local-solver benchmark-suite clean-artifacts

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

# One Dagster asset backfill (daemon + run queue, max_concurrent_runs in dagster.yaml) of
# the 51 local|<state> shards, their national|<state> fallbacks and the local|US fan-in,
# followed to the end (non-zero exit on a failed cell); starts dagster-daemon unless one
# runs (`make ui`). Needs national|US built first (`make build`). STATES=CA,TX for a few,
# HOUSEHOLDS=N per shard.
STATES ?=
backfill: $(VENV)/.installed
	$(PY) -m microplex_assets.backfill $(if $(STATES),--states $(STATES),) \
		$(if $(HOUSEHOLDS),--households $(HOUSEHOLDS),)

test: $(VENV)/.installed
	$(PY) -m pytest -ra

# Loopback only unless configured (UI_HOST=0.0.0.0 exposes the UI, which has no login).
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000
ui: $(VENV)/.installed
	$(VENV)/bin/dagster dev -h $(UI_HOST) -p $(UI_PORT) -w workspace.yaml

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

# local-rich as one joint fit (calibration/joint_local.py) on the backfill's saved shard matrices.
benchmark-joint-local: $(VENV)/.installed
	$(PY) benchmarks/joint_local.py

benchmark-local-solver: $(VENV)/.installed
	$(PY) benchmarks/local_solver.py

# The fault suite (tests/faults): cases tried, caught with a clear error, data lost.
benchmark-faults: $(VENV)/.installed
	$(PY) benchmarks/faults.py

# The stage-9 reform suite on the last build's H5 pair (per reform households, seconds and
# impacts on both weight vectors, gates, peak RSS); SUITE_ARGS='--households 3000' samples.
benchmark-suite: $(VENV)/.installed
	$(PY) benchmarks/microsim_suite.py $(SUITE_ARGS)

clean-artifacts:
	rm -rf dagster_home/artifacts dagster_home/storage

# Releases (see README "Releases"): make a run bundle current, undo the last switch, rebuild
# the run index from the bundles alone and re-render the readiness dashboard.
RUN ?=
.PHONY: promote rollback release-index
promote: $(VENV)/.installed
	@test -n "$(RUN)" || (echo "usage: make promote RUN=<run_key> [PRODUCT=.. GEOGRAPHY=..]"; exit 2)
	$(PY) -m microplex_assets.release.cli promote --run $(RUN) --product $(PRODUCT) --geography $(GEOGRAPHY)

rollback: $(VENV)/.installed
	$(PY) -m microplex_assets.release.cli rollback --product $(PRODUCT) --geography $(GEOGRAPHY)

release-index: $(VENV)/.installed
	$(PY) -m microplex_assets.release.index rebuild
	$(PY) -m microplex_assets.release.dashboard

# Remove old run bundles: keep the newest KEEP per cell and every bundle on the promotion
# stack (current, the one a rollback returns to, ...).
KEEP ?= 5
.PHONY: gc
gc: $(VENV)/.installed
	$(PY) -m microplex_assets.release.retention --keep $(KEEP)

# A real headless browser's view of the readiness dashboard (installs Debian's chromium
# when missing): dagster_home/artifacts/_release/readiness.png.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DASHBOARD := $(abspath dagster_home/artifacts/_release/readiness.html)
.PHONY: dashboard-screenshot
dashboard-screenshot:
	command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)
	test -f $(DASHBOARD) || (echo "no $(DASHBOARD): run make build or make release-index"; exit 2)
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2600 \
		--screenshot=$(dir $(DASHBOARD))readiness.png file://$(DASHBOARD)
