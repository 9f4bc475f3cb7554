# The two commands of the README's quick start, and the steps they share.
# Only Python 3.11 is needed: uv is installed into .tools/, the locked
# dependencies into .venv/ (bytecode compiled, so imports are not re-compiled on
# every start on machines that set PYTHONDONTWRITEBYTECODE).

PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: demo test install lint clean

demo: $(STAMP)
	$(VENV)/bin/ontrack demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --compile-bytecode --python $(PYTHON)
	touch $(STAMP)

clean:
	rm -rf state .venv .tools
