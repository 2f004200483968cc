# Two entry points for a fresh Debian machine; both run the setup first.
#   make demo   set up, then run the main job on its embedded default
#   make test   set up, then run the fast test suite
VENV ?= .venv
HARNESS = $(VENV)/bin/harness

.PHONY: setup demo test test-slow

setup:
	./scripts/setup.sh

# A short study on the embedded default (BasicMotions, dscnn_se, QEMU
# mps2-an386, ARS-MOBO) with reduced epochs and budget: about 15 minutes on
# 2 cores. Running it again continues the study instead of starting over.
demo: setup
	$(HARNESS) run --trials 12 --param epochs=20:40 --param batch_size=8:32 --param lr=0.001:0.01 --out results/demo

test: setup
	$(VENV)/bin/python -m pytest -q

test-slow: setup
	$(VENV)/bin/python -m pytest -q -m slow
