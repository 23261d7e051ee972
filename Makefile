# tas-bench: `make demo` runs the whole pipeline on the built-in demo data; `make test` runs the
# test suite. Both install what they need (Debian packages as root, a venv with pinned torch).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
# Every install runs under the lock: exact versions of every package (see constraints.txt).
PIP := $(BIN)/python -m pip install -q -c constraints.txt
# Sound sources and the KEMAR HRTF the simulator uses (see README "Data sources").
APT_RUNTIME := libmysofa1 sound-theme-freedesktop sonic-pi-samples pocketsphinx-testdata espeak-ng
# The leaderboard page is tested in a real headless browser; its LaTeX tables with pdflatex.
APT_TEST := chromium chromium-driver texlive-latex-base texlive-latex-recommended
DEMO_OUT ?= runs/demo

.PHONY: install install-test demo test lint bench clean lock

define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "need root to install:" $$missing; exit 1; fi; \
	  $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi
endef

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) pip
	# torch first and pinned: the CPU build on local disk (any other resolution pulls CUDA)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Re-resolve the lock from pyproject.toml in a throw-away venv (needs the package registry).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q torch==2.13.0
	.lock-venv/bin/python -m pip install -q -e '.[test]'
	{ sed -n '/^#/p' constraints.txt; .lock-venv/bin/python -m pip freeze --all --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .lock-venv
	@echo "constraints.txt refreshed: review 'git diff constraints.txt', run make test, commit"

install: $(STAMP)
	$(call apt_install,$(APT_RUNTIME))

install-test: install
	$(call apt_install,$(APT_TEST))

# The official PANNs/VGGish files once, when reachable (sha256 checked); without them the
# demo goes on and its generation metrics (FD, FAD, KL, IS) are skipped, saying so.
demo: install
	-$(BIN)/tas-bench weights download --all --if-reachable
	$(BIN)/tas-bench reproduce --preset demo --out $(DEMO_OUT)

test: install-test
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

bench: install  # not a set-up command: prints benchmark figures
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_score.py
	$(BIN)/python benchmarks/bench_generate.py

clean:
	rm -rf $(VENV) runs build *.egg-info
