# The two commands a newcomer needs:  make book  (build the HTML book)  and  make test.
# Both create the virtual environment on first use.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= ci
# The exact versions the book was built and tested with (pip-compile output; `make lock`
# refreshes it). LOCK= (empty) installs the version ranges of pyproject.toml instead.
LOCK    ?= requirements-lock.txt
# torch is installed first and on its own: by default the lock's CPU wheel, so pip never
# resolves a multi-GB CUDA build on a CPU-only machine. On a GPU machine pass e.g.
# TORCH_SPEC="torch" (the lock then installs everything else). Where the CPU wheel is not on
# the package index pip sees, point TORCH_INDEX at one that has it.
TORCH_LOCKED := $(shell sed -n 's/^\(torch==[^ ]*\).*/\1/p' requirements-lock.txt 2>/dev/null)
TORCH_SPEC ?= $(if $(TORCH_LOCKED),$(TORCH_LOCKED),torch)
TORCH_INDEX ?=
JB_FLAGS   ?= --all -W -n --keep-going
FASHION_MNIST := /usr/share/datasets/fashion-mnist

# An inherited Agg backend silently drops every figure from executed notebooks.
unexport MPLBACKEND

.PHONY: book pages html test test-fast check-html lint format data venv lock chromium benchmark record clean

book: pages html

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
ifneq ($(strip $(LOCK)),)
	grep -v '^torch==' $(LOCK) > $(VENV)/lock-without-torch.txt
	$(PY) -m pip install -q -r $(VENV)/lock-without-torch.txt
	$(PY) -m pip install -q --no-deps -e .
	@printf 'lock %s\ntorch %s\n' "$(LOCK)" "$(TORCH_SPEC)" > $@
else
	$(PY) -m pip install -q -e ".[book,test]"
	@printf 'ranges pyproject.toml\ntorch %s\n' "$(TORCH_SPEC)" > $@
endif

# Re-resolve the lock within pyproject.toml's ranges (pip-tools in a throwaway venv; pins
# already in the lock are kept unless LOCK_ARGS=--upgrade). torch stays the locked CPU wheel.
lock:
	@test -x $(VENV)/.lock-tools/bin/pip-compile || \
	  (python3 -m venv $(VENV)/.lock-tools && $(VENV)/.lock-tools/bin/pip install -q pip-tools)
	@echo "$(TORCH_LOCKED)" > $(VENV)/.lock-tools/torch.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/.lock-tools/bin/pip-compile -q --extra book --extra test \
	  --allow-unsafe --strip-extras --no-emit-find-links --no-emit-index-url \
	  -c $(VENV)/.lock-tools/torch.txt $(LOCK_ARGS) -o requirements-lock.txt pyproject.toml

# Fashion-MNIST (the offline stand-in for CIFAR-10) from Debian, where apt-get and root are available.
data:
	@if [ -d $(FASHION_MNIST) ]; then echo "Fashion-MNIST present in $(FASHION_MNIST)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null)) && \
	  echo "installed Fashion-MNIST into $(FASHION_MNIST)"; \
	else echo "note: Fashion-MNIST not installed (needs apt-get as root: apt-get install dataset-fashion-mnist);" \
	  "the image experiments then need a CIFAR-10 directory (--data-dir)"; fi

# Headless Chromium and its driver from Debian, for tests/test_browser.py (skipped without them).
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "Chromium present: $$(chromium --version 2>/dev/null)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null)) && \
	  echo "installed $$(chromium --version 2>/dev/null)"; \
	else echo "note: Chromium not installed (needs apt-get as root: apt-get install chromium chromium-driver);" \
	  "the browser test is skipped"; fi

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

# Train an experiment's runs (resuming an interrupted run from its last checkpoint) and record
# them into recorded/ with their provenance, e.g. on a GPU machine:
#   make record PROFILE=paper EXPERIMENT=lstm_ptb DEVICE=cuda TIME_LIMIT=50
# With TIME_LIMIT (minutes) training checkpoints and stops (exit status 3) once it has run that
# long: run the same command again to continue; it records once every run is finished.
RESULTS_DIR  ?= results
RECORDED_DIR ?= recorded
record: venv data
	@test -n "$(EXPERIMENT)" || { echo "usage: make record PROFILE=paper EXPERIMENT=lstm_ptb|resnet_images [DEVICE=cuda] [TIME_LIMIT=minutes] [DATA_DIR=dir]"; exit 2; }
	$(PY) -m clipcore train $(EXPERIMENT) --profile $(PROFILE) --results-dir $(RESULTS_DIR) --no-progress \
	  $(if $(DEVICE),--device $(DEVICE)) $(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT)) $(if $(DATA_DIR),--data_dir $(DATA_DIR))
	$(PY) -m clipcore recordings add --experiment $(EXPERIMENT) --profile $(PROFILE) \
	  --results-dir $(RESULTS_DIR) --recorded-dir $(RECORDED_DIR) $(if $(DATA_DIR),--data-dir $(DATA_DIR))
	$(PY) -m clipcore recordings check --recorded-dir $(RECORDED_DIR)

clean:
	rm -rf _build book/*.ipynb book/_status.json book/_claims.json book/_data
