# Two commands for a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv and run the main job on the bundled example audio
#   make test   set up .venv and run the tests
# The environment is pinned by constraints.txt (torch==2.13.0, CPU wheel where available);
# the package itself only asks for torch>=2.3.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/fxcli process examples/audio out/ --preset mastering --overwrite
	$(BIN)/fxcli process examples/audio/voice out/voice-preset/ --preset voice --overwrite

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet ruff mypy
	$(BIN)/ruff check fxcli tests bench examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) out
