# Set-up and entry points of infopro_mm. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.infopro_mm-installed
PYTEST_ARGS ?=

.PHONY: install demo test clean-env

install: $(STAMP)

# Re-runs only when the pins or the installer change; the installer itself
# skips every step that is already done.
$(STAMP): $(wildcard requirements/*.txt) setup.py tools/install_env.sh
	VENV=$(VENV) bash tools/install_env.sh
	touch $(STAMP)

demo: install
	$(PY) tools/demo.py $(DEMO_ARGS)

# pytest exits 5 when no test is collected; that is not a failure here.
test: install
	$(PY) -m pytest tests $(PYTEST_ARGS) || [ $$? -eq 5 ]

clean-env:
	rm -rf $(VENV)
