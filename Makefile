# Two entry points for a fresh Debian machine; both run the setup first.
#   make demo   set up, then run the main job on its embedded default
#   make test   set up, then run the fast test suite
VENV ?= .venv
HARNESS = $(VENV)/bin/harness

.PHONY: setup demo test test-slow

setup:
	./scripts/setup.sh

demo: setup
	$(HARNESS) evaluate --dataset basicmotions --network dscnn_se --param epochs=40 --save results/demo/evaluate --json results/demo/evaluate/metrics.json

test: setup
	$(VENV)/bin/python -m pytest -q

test-slow: setup
	$(VENV)/bin/python -m pytest -q -m slow
