# The two commands: `make run` and `make test`. Each sets up .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
WORKERS ?= 2

.PHONY: run test install lint clean bench bench-compare

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/flask --app gateway db upgrade
	$(BIN)/flask --app gateway policy check
	PORT=$(PORT) $(BIN)/flask --app gateway demo setup
	HOST=$(HOST) PORT=$(PORT) WEB_CONCURRENCY=$(WORKERS) $(BIN)/gunicorn --config gunicorn.conf.py 'gateway:create_app()'

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# the same benchmark of another revision and of this checkout, alternating: BEFORE=<rev>
bench-compare: install
	$(BIN)/python bench/compare.py --before $(BEFORE) $(if $(ROUNDS),--rounds $(ROUNDS)) -- $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check gateway tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy gateway

clean:
	rm -rf $(VENV) instance/*.db instance/*.db-* .pytest_cache
