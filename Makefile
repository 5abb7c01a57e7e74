# The two commands a newcomer needs:  make book  (build the HTML book)  and  make test.
# Both create the virtual environment on first use.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= ci
# The CPU wheel of torch is installed before the package, so pip never resolves a
# multi-GB CUDA build on a CPU-only machine. On a GPU machine, pass e.g. TORCH_SPEC="torch".
TORCH_SPEC ?= torch==2.13.0
JB_FLAGS   ?= --all -W -n --keep-going
FASHION_MNIST := /usr/share/datasets/fashion-mnist

# An inherited Agg backend silently drops every figure from executed notebooks.
unexport MPLBACKEND

.PHONY: book pages html test test-fast check-html lint format data venv benchmark clean

book: pages html

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[book,test]"
	@touch $@

# Fashion-MNIST (the offline stand-in for CIFAR-10) from Debian, where apt-get and root are available.
data:
	@if [ -d $(FASHION_MNIST) ]; then echo "Fashion-MNIST present in $(FASHION_MNIST)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null)) && \
	  echo "installed Fashion-MNIST into $(FASHION_MNIST)"; \
	else echo "note: Fashion-MNIST not installed (needs apt-get as root: apt-get install dataset-fashion-mnist);" \
	  "the image experiments then need a CIFAR-10 directory (--data-dir)"; fi

# Execute every page with papermill under $(PROFILE), then render them.
pages: venv data
	$(PY) -m clipcore.book --profile $(PROFILE)

html: venv
	$(VENV)/bin/jupyter-book build . $(JB_FLAGS)
	@echo "The book is at _build/html/index.html"

test: venv data
	$(PY) -m pytest -q

# Unit tests only (skips executing pages).
test-fast: venv
	$(PY) -m pytest -q -m "not pages"

# ruff lints and checks the formatting (configured in pyproject.toml); `make format` rewrites.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-html: venv
	$(PY) -m pytest -q tests/test_html.py

benchmark: venv data
	$(PY) -m benchmarks

clean:
	rm -rf _build book/*.ipynb book/_status.json
