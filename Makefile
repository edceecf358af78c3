# kefu — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := $(VENV)/.system-packages
HOST ?= 127.0.0.1
PORT ?= 5005
WORKERS ?= 1
# a Rasa 3.6 venv (../shared/tools/rasa-peer/install.sh, plus `pip install jieba` in it) that `make bench` measures
RASA_VENV ?=

.PHONY: install system-packages run train test lint bench fuzz soak clean

install: $(STAMP) system-packages

# Python packages: CPU torch first (an unpinned torch would pull a multi-GB CUDA build), then the project.
$(STAMP): pyproject.toml
	@echo "[1/3] creating $(VENV) and updating pip"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "[2/3] installing CPU torch (the largest download, about a minute)"
	$(BIN)/python -m pip install --quiet torch==2.13.0
	@echo "[3/3] installing kefu and its packages"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use: a real redis-server, an IMAP server (dovecot) for the e-mail channel, headless
# chromium and a CJK font for its pages.
system-packages:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ] || missing="$$missing dovecot-imapd"; \
	dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

train: install
	$(BIN)/kefu train

run: install
	$(BIN)/kefu run --host $(HOST) --port $(PORT) --workers $(WORKERS)

# Two pytest-xdist workers (whole files each): most tests wait on servers and browsers, so two share two cores
# well; TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

# Longer fuzzing than `make test` does (README "Fuzzing"): schemathesis with many examples per operation against a
# live server, the parser properties with many examples, then atheris (coverage-guided) over the WeChat XML and
# widget-frame parsers for FUZZ_SECONDS each. Crashing inputs are saved in results/fuzz/.
FUZZ_EXAMPLES ?= 100
FUZZ_PROPERTY_EXAMPLES ?= 1000
FUZZ_SECONDS ?= 60

fuzz: install
	@mkdir -p results/fuzz
	@echo "[1/3] schemathesis: $(FUZZ_EXAMPLES) examples per operation of /openapi.json against a live server"
	KEFU_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_api_fuzz.py
	@echo "[2/3] hypothesis: $(FUZZ_PROPERTY_EXAMPLES) examples per parser property"
	KEFU_PROPERTY_EXAMPLES=$(FUZZ_PROPERTY_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_parser_properties.py
	@echo "[3/3] atheris: WeChat XML and widget frames, $(FUZZ_SECONDS) s each"
	@for target in xml frames; do \
		log=results/fuzz/atheris-$$target.log; \
		if $(BIN)/python -m tests.fuzz.atheris_parsers $$target -max_total_time=$(FUZZ_SECONDS) \
				-artifact_prefix=results/fuzz/ >$$log 2>&1; then \
			echo "atheris $$target: $$(grep -E '^Done' $$log), no crash"; \
		else \
			tail -n 40 $$log; echo "atheris $$target: CRASH (input saved in results/fuzz/, log $$log)"; exit 1; \
		fi; \
	done

# Soak with faults (README "Soak"): three workers on one redis-server (AOF), shoppers on REST, the chat bubble,
# WeChat and Messenger fakes, agents answering; kill -9 of a worker, a Redis restart and a 5 s pause meanwhile.
# Prints what was sent, acknowledged, stored, lost and doubled; fails when anything was lost or doubled.
SOAK_CONVERSATIONS ?= 1000
SOAK_MINUTES ?= 3
SOAK_CONCURRENCY ?= 100

soak: install
	$(BIN)/python benchmarks/soak_faults.py --conversations $(SOAK_CONVERSATIONS) --minutes $(SOAK_MINUTES) \
		--concurrency $(SOAK_CONCURRENCY)

lint: install
	$(BIN)/ruff check .

# Speed and memory: kefu (1 and 2 workers) against Rasa 3.6 on the moodbot and the demo shop (kefu alone without
# RASA_VENV), then the 100,000-entry FAQ and 10,000 idle chat sockets on one worker; each compared with its target.
bench: install
	RASA_TELEMETRY_ENABLED=false $(BIN)/python benchmarks/vs_rasa.py $(if $(RASA_VENV),--rasa-venv $(RASA_VENV)) $(VS_RASA_ARGS)
	$(BIN)/python benchmarks/bench_faq_scale.py
	$(BIN)/python benchmarks/bench_sockets.py

clean:
	rm -rf results .pytest_cache kefu.db* models/*.tar.gz
