# kefu — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := $(VENV)/.system-packages
HOST ?= 127.0.0.1
PORT ?= 5005

.PHONY: install system-packages run train test lint bench clean

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
	$(BIN)/kefu run --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/bench_server.py

clean:
	rm -rf results .pytest_cache kefu.db* models/*.tar.gz
