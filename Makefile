# The README's two commands are `make demo` and `make test`; both install what they need.
VENV := .venv
STAMP := $(VENV)/.installed
SOURCES := pyproject.toml .ci/bootstrap .ci/llama-wheel $(wildcard core/pyproject.toml plugins/*/pyproject.toml contrib/*/pyproject.toml)

.PHONY: demo test bench lint

$(STAMP): $(SOURCES)
	bash .ci/bootstrap
	touch $@

demo: $(STAMP)
	$(VENV)/bin/plait demo faq

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python -m tests.bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
