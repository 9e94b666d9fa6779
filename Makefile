# flagsvc — the two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?= -n auto --dist worksteal  # two workers per core, each with its own databases (tests/conftest.py)

DEMO_DATABASE_URL ?= sqlite:///./flagsvc-demo.db
# make run / make demo log readable text lines (a deployment's default stays JSON)
FLAGSVC_LOG_FORMAT ?= text
export FLAGSVC_LOG_FORMAT

.PHONY: install run demo test lint typecheck warm unit screenshots lock clean

$(STAMP): pyproject.toml sdk/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e './sdk[openfeature]' -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the service, the SDK and the dev tools

run: install  ## migrate, create environments (and a first admin token), serve on :8000
	$(BIN)/flagsvc serve --host $(HOST) --port $(PORT) --with-scheduler --init

demo: install  ## a demo quarter in its own database (flagsvc-demo.db), served on :8000
	DATABASE_URL=$(DEMO_DATABASE_URL) $(BIN)/flagsvc demo
	DATABASE_URL=$(DEMO_DATABASE_URL) $(BIN)/flagsvc serve --host $(HOST) --port $(PORT) --with-scheduler --init

test: install lint  ## everything CI runs
	@$(MAKE) --no-print-directory -j2 --output-sync=target typecheck warm
	@$(MAKE) --no-print-directory unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy flagsvc sdk/flagsvc_sdk tests/type_check

# Bytecode caches stay on for the tests even where the environment turns them off: each
# xdist worker would otherwise compile and assertion-rewrite every test module again
# (collection 9 s instead of 3.5 s), and each service process the tests start recompiles
# flagsvc. __pycache__ is ignored by git.
unit: install
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest $(PYTEST_ARGS)

# One collection in one process, beside mypy (``make test`` runs the two together): it
# writes pytest's rewritten test modules to __pycache__, so the workers ``unit`` starts
# read them instead of each compiling all of them at once (bench/README.md, "The
# suite's time", third pass).
warm: install
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest --collect-only -q -n 0 >$(VENV)/collected.txt \
	  || { cat $(VENV)/collected.txt; exit 1; }

screenshots: install  ## the browser tests, saving every page they show to test-artifacts/screenshots/
	FLAGSVC_SCREENSHOTS=1 $(BIN)/pytest $(PYTEST_ARGS) tests/ui/test_browser*.py

lock:  ## re-pin every dependency after changing pyproject.toml
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
