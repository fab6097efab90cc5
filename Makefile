# The two commands a reader needs: `make book` and `make test`. Both create .venv and install
# the project from its lock file first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WIDGETS_JS := book/_extra/_widgets/embed-amd.js
# Quick mode, static figures, no frozen progress bars in the rendered pages.
BOOK_ENV := COMPANION_MODE=quick COMPANION_STATIC_FIGURES=1 TQDM_DISABLE=1 MPLBACKEND=Agg HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: install book test test-lib test-notebooks test-browser lab sync bench clean browser-deps

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Widgets' JavaScript from npm, served from the book itself so pages work offline (no CDN).
$(WIDGETS_JS):
	mkdir -p .widgets-npm book/_extra/_widgets
	cd .widgets-npm && npm install --silent --no-audit --no-fund --no-save requirejs@2.3.7 @jupyter-widgets/html-manager@1.0.13 >/dev/null
	cp .widgets-npm/node_modules/requirejs/require.js book/_extra/_widgets/require.min.js
	cp .widgets-npm/node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js book/_extra/_widgets/embed-amd.js
	cp .widgets-npm/node_modules/@jupyter-widgets/html-manager/dist/*.woff* book/_extra/_widgets/ 2>/dev/null || true

book: $(STAMP) $(WIDGETS_JS)
	rm -rf _build/.jupyter_cache
	$(BOOK_ENV) $(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going --quiet
	@echo "Book built: $(CURDIR)/_build/html/index.html"

# Debian's Chromium for the real-browser test (root on Debian/Ubuntu; skipped when already there).
browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test-lib: $(STAMP)
	$(BIN)/python -m pytest tests -m "not browser" -q

test-notebooks: $(STAMP)
	$(BOOK_ENV) $(BIN)/python -m pytest --nbmake book -q

test-browser: book browser-deps
	$(BIN)/python -m pytest tests -m browser -q

test: $(STAMP) $(WIDGETS_JS) browser-deps
	$(BIN)/python -m pytest tests -m "not browser" -q
	$(BOOK_ENV) $(BIN)/python -m pytest --nbmake book -q
	$(MAKE) book
	$(BIN)/python -m pytest tests -m browser -q

# JupyterLab is not in the lock file: it installs on first use.
lab: $(STAMP)
	$(BIN)/pip install -q jupyterlab
	cd book && ../$(BIN)/jupyter lab

# Regenerate each chapter's .ipynb from its reviewed .md source.
sync: $(STAMP)
	$(BIN)/jupytext --to ipynb --update-metadata '{}' book/[0-9]*.md

bench: $(STAMP)
	$(BIN)/python benchmarks/chapters.py

clean:
	rm -rf _build .widgets-npm book/_extra/_widgets
