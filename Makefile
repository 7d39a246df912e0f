# kbu: top-level build. `make` builds native/, `make test` runs every test,
# `make demo` runs the bundled triage, `make bench` prints ratios.
PREFIX  ?= /usr/local
DESTDIR ?=
PYTHON  ?= /usr/bin/python3
BUILD   ?= build

export KBU_ROOT := $(CURDIR)

.PHONY: all deps native guest test unit pytest bench demo install clean

all: deps native guest

deps:
	@scripts/deps --build

native: deps
	@$(MAKE) -s -C native BUILD=$(abspath $(BUILD))

guest: deps
	@$(MAKE) -s -C tests/guest BUILD=$(abspath $(BUILD))/guest

unit: native
	@$(MAKE) -s -C native BUILD=$(abspath $(BUILD)) unit

pytest: all
	@scripts/deps --test
	cd tests && $(PYTHON) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test: unit pytest

bench: all
	@scripts/deps --test
	$(PYTHON) bench/run.py

demo: all
	@scripts/deps --test
	scripts/demo

install: native
	@$(MAKE) -s -C native BUILD=$(abspath $(BUILD)) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) install
	install -d $(DESTDIR)$(PREFIX)/share/kbu
	cp -r gdbext recipes scripts $(DESTDIR)$(PREFIX)/share/kbu/

clean:
	rm -rf $(BUILD)
