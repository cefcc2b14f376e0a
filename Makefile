# The README's two commands are `make demo` and `make test`; both install what they need.
VENV := .venv
STAMP := $(VENV)/.installed
SOURCES := pyproject.toml .ci/bootstrap .ci/uv .ci/llama-wheel \
  $(wildcard core/pyproject.toml plugins/*/pyproject.toml contrib/*/pyproject.toml docs/examples/*/pyproject.toml)

.PHONY: demo test bench lint

$(STAMP): $(SOURCES)
	bash .ci/bootstrap
	touch $@

demo: $(STAMP)
	$(VENV)/bin/plait demo faq

# pytest exits 5 when nothing was collected (e.g. a -k that matches nothing): not a failure
test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: $(STAMP)
	$(VENV)/bin/python -m tests.bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
