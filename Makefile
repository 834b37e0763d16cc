# igym: the two commands of the README's quick start are `make demo` and `make test`.
# Every target installs what it needs, so both work on a fresh Debian machine with Python 3.11,
# node/npm and root (for apt-get).

SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
PORT ?= 8000
DEMO ?= igym_slime.examples.vs_ai:experiment
CLIENT := igym_core/src/igym_core/client/igym.js
FRONTEND_SRC := $(shell find frontend/src -type f 2>/dev/null) frontend/build.mjs frontend/package.json frontend/tsconfig.json
# onnxruntime-web files that igym-onnx serves at /plugins/onnx/ort/ (copied from npm, gitignored)
ONNX_WEB_DIR := plugins/igym_onnx/frontend
ONNX_WEB := plugins/igym_onnx/src/igym_onnx/static/ort/ort-wasm-simd-threaded.wasm
# Pyodide (npm) and micropip (PyPI, pinned and hash-checked) that igym-pyodide-p2p serves under
# content-hashed URLs (copied and downloaded by its frontend/build.mjs, gitignored)
PYODIDE_WEB_DIR := plugins/igym_pyodide_p2p/frontend
PYODIDE_WEB := plugins/igym_pyodide_p2p/src/igym_pyodide_p2p/static/pyodide/VERSION

.PHONY: demo test build setup python frontend onnx-web pyodide-web chromium nftables lint clean docs

demo: setup ## serve the example study at http://127.0.0.1:$(PORT)/
	@echo "Serving: $(UV) run igym run $(DEMO) --port $(PORT)"
	$(UV) run igym run $(DEMO) --port $(PORT)

# The suite in two pytest runs: every test not marked `serial` on TEST_WORKERS pytest-xdist workers,
# then the `serial` ones (they judge speed: fps, lateness, latency, the benches) alone. Both always
# run, and either one failing fails the target (exit 5, "no tests collected", too). `uv run pytest`
# alone runs everything in one process.
TEST_WORKERS ?= 3

test: setup chromium nftables ## run the whole test suite (unit, protocol, browser), then the linters
	status=0; \
	$(UV) run pytest -n $(TEST_WORKERS) --dist worksteal -m "not serial" || status=$$?; \
	$(UV) run pytest -m serial || status=$$?; \
	if [ $$status -ne 0 ]; then echo "make test: a pytest run failed (exit $$status)"; exit $$status; fi
	$(MAKE) lint

build: frontend onnx-web pyodide-web ## build the browser client and plugins' browser files

setup: python frontend onnx-web pyodide-web

python: .make/uv .make/python

.make/uv:
	@mkdir -p .make
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@touch $@

.make/python: .make/uv uv.lock pyproject.toml igym_core/pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(UV) sync --frozen
	@touch $@

frontend: $(CLIENT)

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

$(CLIENT): frontend/node_modules/.package-lock.json $(FRONTEND_SRC)
	cd frontend && npm run build

onnx-web: $(ONNX_WEB)

$(ONNX_WEB_DIR)/node_modules/.package-lock.json: $(ONNX_WEB_DIR)/package-lock.json
	cd $(ONNX_WEB_DIR) && npm ci --no-audit --no-fund

$(ONNX_WEB): $(ONNX_WEB_DIR)/node_modules/.package-lock.json $(ONNX_WEB_DIR)/build.mjs $(ONNX_WEB_DIR)/package.json
	cd $(ONNX_WEB_DIR) && npm run build

pyodide-web: $(PYODIDE_WEB)

$(PYODIDE_WEB_DIR)/node_modules/.package-lock.json: $(PYODIDE_WEB_DIR)/package-lock.json
	cd $(PYODIDE_WEB_DIR) && npm ci --no-audit --no-fund

$(PYODIDE_WEB): $(PYODIDE_WEB_DIR)/node_modules/.package-lock.json $(PYODIDE_WEB_DIR)/build.mjs $(PYODIDE_WEB_DIR)/package.json $(PYODIDE_WEB_DIR)/micropip.txt
	cd $(PYODIDE_WEB_DIR) && PYTHON=$(PYTHON) npm run build

chromium: ## Debian's Chromium, for the browser tests
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Debian's chromium (needs root)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

nftables: ## Debian's nft, for the P2P browser test that drops real UDP packets in its network namespace
	@if ! command -v nft >/dev/null 2>&1; then \
		echo "Installing Debian's nftables (needs root)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables; \
	fi

docs: setup chromium ## regenerate the reference docs: render-object pictures (real client, Chromium) and page, the experiment JSON Schema and its page
	$(UV) run python docs/tools/render_object_pictures.py
	$(UV) run python -m igym_core.docs all --docs-dir docs

lint: ## ruff (lint and format) and the client's type check
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	cd frontend && npm run typecheck

clean:
	rm -rf .make igym_core/src/igym_core/client frontend/node_modules
	rm -rf $(ONNX_WEB_DIR)/node_modules $(dir $(ONNX_WEB))
	rm -rf $(PYODIDE_WEB_DIR)/node_modules $(dir $(PYODIDE_WEB))
