# Root Makefile: builds and tests the subprojects. It shares no code with them.
# A subproject is any top-level folder holding a pyproject.toml.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
SUBPROJECTS := $(sort $(patsubst %/pyproject.toml,%,$(wildcard */pyproject.toml)))
PYTHON ?= python3

# uv: use the one on PATH, else install it from PyPI into .tools/ (never a binary download).
UV_FROM_PATH := $(shell command -v uv 2>/dev/null)
UV ?= $(if $(UV_FROM_PATH),$(UV_FROM_PATH),$(ROOT)/.tools/venv/bin/uv)
# uv must use this machine's python3; its default cache (~/.cache/uv, or UV_CACHE_DIR when set)
# is shared by all virtualenvs, which then hard-link the same wheels.
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE ?= hardlink
# Tests never touch the network: hub weights and wandb stay offline.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= offline
export MPLBACKEND := Agg

.PHONY: help test demo smoke gpu-check check-standalone clean-all
help:
	@echo "Targets (slug = one of the subprojects below):"
	@echo "  make setup-<slug>      create <slug>/.venv with uv, install the subproject editable with [test]"
	@echo "  make test-<slug>       run the subproject's test suite (CPU)"
	@echo "  make demo-<slug>       tiny train + eval on built-in data (run folder, metrics, figures)"
	@echo "  make bench-<slug>      throughput benchmark, printed as ratios against its reference"
	@echo "  make reproduce-<slug>  the paper's central comparison, small (CPU, <= 15 min)"
	@echo "  make smoke-<slug>      paper preset at paper sizes: 2 steps, resume 1, eval (slow; CPU or CUDA)"
	@echo "  make clean-<slug>      remove the subproject's .venv, runs/ and caches"
	@echo "  make test | make demo  all subprojects, keep going, print a summary, fail if any failed"
	@echo "  make smoke             smoke-<slug> over all subprojects, with a wall-time / peak-memory table"
	@echo "  make gpu-check         on a CUDA machine: gpu tests, smoke and GPU bench figures of every"
	@echo "                         subproject, into gpu-check.json (exits 0 with a note without CUDA)"
	@echo "  make check-standalone  copy each subproject alone to a temp dir and run its tests there"
	@echo "Subprojects found: $(SUBPROJECTS)"

$(ROOT)/.tools/venv/bin/uv:
	$(PYTHON) -m venv $(ROOT)/.tools/venv
	$(ROOT)/.tools/venv/bin/python -m pip install -q uv

# The stamp is newer than pyproject.toml once the install succeeded, so a second setup is a no-op.
# (.PRECIOUS: make must not delete it as an intermediate file of the pattern rules.)
.PRECIOUS: %/.venv/.installed
# Run inside a subproject folder: create .venv once, install the folder editable with [test].
VENV_INSTALL = { [ -x .venv/bin/python ] || $(UV) venv -q -p $(PYTHON) .venv; } \
	&& $(UV) pip install -q -p .venv/bin/python -e '.[test]'

%/.venv/.installed: %/pyproject.toml | $(UV)
	cd $* && $(VENV_INSTALL)
	touch $@

setup-%: %/.venv/.installed
	@true

test-%: %/.venv/.installed
	cd $* && .venv/bin/python -m pytest -q

demo-%: %/.venv/.installed
	cd $* && rm -rf runs/demo && .venv/bin/python train.py --config configs/tiny.toml --out_dir runs/demo
	cd $* && .venv/bin/python eval.py --ckpt runs/demo/ckpt/last.pt
	@echo "demo run folder: $*/runs/demo"

bench-%: %/.venv/.installed
	cd $* && .venv/bin/python bench.py

reproduce-%: %/.venv/.installed
	@if [ -f $*/reproduce.py ]; then cd $* && .venv/bin/python reproduce.py; \
	else echo "$* has no claim check (reproduce.py)"; fi

# SMOKE_ARGS is passed to smoke.py (e.g. SMOKE_ARGS="--device cuda").
smoke-%: %/.venv/.installed
	cd $* && .venv/bin/python smoke.py $(SMOKE_ARGS)

clean-%:
	rm -rf $*/.venv $*/runs $*/.pytest_cache $*/.ruff_cache
	find $* -name __pycache__ -type d -prune -exec rm -rf {} +

clean-all: $(addprefix clean-,$(SUBPROJECTS))

# Run one target over every subproject, keep going past failures, print a table, fail if any failed.
define over_all
	@summary=""; failed=0; start_all=$$(date +%s); \
	for s in $(SUBPROJECTS); do \
	  t0=$$(date +%s); \
	  if $(MAKE) --no-print-directory $(1)-$$s; then r=ok; else r=FAILED; failed=$$((failed+1)); fi; \
	  summary="$$summary$$(printf '%-22s %-7s %6ss' $$s $$r $$(( $$(date +%s)-t0 )))\n"; \
	done; \
	printf '\n== make $(1) summary ==\n%-22s %-7s %7s\n' subproject result time; \
	printf "$$summary"; \
	printf 'total %ss, %s of %s failed\n' $$(( $$(date +%s)-start_all )) $$failed $(words $(SUBPROJECTS)); \
	[ $$failed -eq 0 ]
endef

test:
	$(call over_all,test)

demo:
	$(call over_all,demo)

# make smoke: every smoke-<slug>, then one table of the smoke.json files they wrote.
smoke:
	@failed=0; start_all=$$(date +%s); \
	for s in $(SUBPROJECTS); do \
	  rm -f $$s/runs/smoke/smoke.json; \
	  $(MAKE) --no-print-directory smoke-$$s || failed=$$((failed+1)); \
	done; \
	$(PYTHON) .ci/smoke_table.py $(SUBPROJECTS); \
	printf 'total %ss, %s of %s failed\n' $$(( $$(date +%s)-start_all )) $$failed $(words $(SUBPROJECTS)); \
	[ $$failed -eq 0 ]

gpu-check:
	$(PYTHON) .ci/gpu_check.py $(SUBPROJECTS)

check-standalone: | $(UV)
	@failed=0; for s in $(SUBPROJECTS); do \
	  tmp=$$(mktemp -d); \
	  tar -C $$s --exclude=.venv --exclude=runs --exclude=__pycache__ --exclude=.pytest_cache -cf - . | tar -C $$tmp -xf -; \
	  echo "== $$s standalone in $$tmp"; \
	  if (cd $$tmp && $(VENV_INSTALL) && .venv/bin/python -m pytest -q -x); then \
	    echo "$$s standalone: ok"; \
	  else echo "$$s standalone: FAILED"; failed=$$((failed+1)); fi; \
	  rm -rf $$tmp; \
	done; [ $$failed -eq 0 ]
