# kbu: top-level build. `make` builds native/ (libkbu, kbu), the test kernel,
# the man pages and the bash completion; `make test` runs every test; `make
# install` / `make uninstall` (PREFIX, DESTDIR); `make deb` a Debian package;
# `make docs` re-runs the documentation's examples; `make demo`; `make bench`.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
PYTHON  ?= /usr/bin/python3
BUILD   ?= build

B       := $(abspath $(BUILD))
KBUDATA := $(DATADIR)/kbu
SCRIPTS := kbu-gdb kbu-triage
NATIVE_VARS := BUILD=$(B) PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) BINDIR=$(BINDIR)

.PHONY: all deps native guest man completion test unit pytest bench demo docs \
	install uninstall deb clean

all: deps native guest man completion

deps:
	@scripts/deps --build

native: deps
	@echo "kbu: building libkbu, the kbu CLI and kbu-gen (native/ -> $(BUILD)/)"
	@$(MAKE) -s -C native BUILD=$(B)

guest: deps
	@echo "kbu: building the test kernel (tests/guest/ -> $(BUILD)/guest/kernel)"
	@$(MAKE) -s -C tests/guest BUILD=$(B)/guest

# Man pages and completion come from the programs' own --help (kbu-gen);
# a file is replaced only when its text changed.
man: native
	@mkdir -p $(B)/man
	@$(B)/kbu --help >$(B)/man/kbu.help
	@scripts/kbu-gdb --help >$(B)/man/kbu-gdb.help
	@scripts/kbu-triage --help >$(B)/man/kbu-triage.help
	@$(B)/kbu-gen man kbu $(B)/man/kbu.help >$(B)/man/kbu.1.new
	@$(B)/kbu-gen man kbu-gdb $(B)/man/kbu-gdb.help \
		"GDB with the kbu extension, attached to a QEMU microvm's GDB stub" >$(B)/man/kbu-gdb.1.new
	@$(B)/kbu-gen man kbu-triage $(B)/man/kbu-triage.help \
		"boot a kernel on QEMU microvm, run a kbu triage recipe, print its verdict" \
		>$(B)/man/kbu-triage.1.new
	@for p in kbu kbu-gdb kbu-triage; do \
		if cmp -s $(B)/man/$$p.1.new $(B)/man/$$p.1; then rm -f $(B)/man/$$p.1.new; \
		else mv $(B)/man/$$p.1.new $(B)/man/$$p.1; echo "  GEN     $(BUILD)/man/$$p.1"; fi; \
	done

completion: man
	@mkdir -p $(B)/completion
	@{ $(B)/kbu-gen bash $(B)/man/kbu.help kbu-gdb=$(B)/man/kbu-gdb.help \
		kbu-triage=$(B)/man/kbu-triage.help && cat packaging/completion.bash; } \
		>$(B)/completion/kbu.new
	@if cmp -s $(B)/completion/kbu.new $(B)/completion/kbu; then rm -f $(B)/completion/kbu.new; \
	else mv $(B)/completion/kbu.new $(B)/completion/kbu; echo "  GEN     $(BUILD)/completion/kbu"; fi

unit: native
	@echo "kbu: C unit tests under ASan+UBSan"
	@$(MAKE) -s -C native BUILD=$(B) unit

pytest: all
	@scripts/deps --test
	@echo "kbu: the pytest suite (tests/, real QEMU and GDB)"
	cd tests && $(PYTHON) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test: unit pytest

bench: all
	@scripts/deps --test
	$(PYTHON) bench/run.py

demo: all
	@scripts/deps --test
	scripts/demo

# Re-runs every example of the documentation against this tree's build and
# today's Debian kernel, and pastes the outputs (docs/commands/regen.py).
docs: all
	@scripts/deps --test
	$(PYTHON) docs/commands/regen.py README.md docs/*.md docs/*/*.md

# PREFIX/bin/{kbu,kbu-gdb,kbu-triage}, PREFIX/lib/libkbu.{so.*,a} + kbu.pc,
# PREFIX/include/kbu, PREFIX/share/kbu/{gdbext,recipes,profiles,scripts}, the
# man pages and the bash completion. Nothing needs an environment variable:
# the scripts find share/kbu from bin/, the GDB extension finds lib/ from share/kbu.
install: native man completion
	@$(MAKE) -s -C native $(NATIVE_VARS) DESTDIR=$(DESTDIR) install
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(KBUDATA)/gdbext/kbu $(DESTDIR)$(KBUDATA)/recipes \
		$(DESTDIR)$(KBUDATA)/profiles $(DESTDIR)$(KBUDATA)/scripts $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(addprefix scripts/,$(SCRIPTS)) $(DESTDIR)$(BINDIR)/
	install -m 755 scripts/microvm scripts/linux-target $(DESTDIR)$(KBUDATA)/scripts/
	install -m 644 gdbext/kbu.py $(DESTDIR)$(KBUDATA)/gdbext/
	install -m 644 gdbext/kbu/*.py $(DESTDIR)$(KBUDATA)/gdbext/kbu/
	install -m 644 recipes/*.py $(DESTDIR)$(KBUDATA)/recipes/
	install -m 644 profiles/*.ini $(DESTDIR)$(KBUDATA)/profiles/
	install -m 644 $(B)/man/kbu.1 $(B)/man/kbu-gdb.1 $(B)/man/kbu-triage.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(B)/completion/kbu $(DESTDIR)$(BASHCOMPDIR)/kbu
	ln -sfn kbu $(DESTDIR)$(BASHCOMPDIR)/kbu-gdb
	ln -sfn kbu $(DESTDIR)$(BASHCOMPDIR)/kbu-triage

uninstall:
	@$(MAKE) -s -C native $(NATIVE_VARS) DESTDIR=$(DESTDIR) uninstall
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(SCRIPTS))
	rm -rf $(DESTDIR)$(KBUDATA)
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,kbu.1 kbu-gdb.1 kbu-triage.1)
	rm -f $(addprefix $(DESTDIR)$(BASHCOMPDIR)/,kbu kbu-gdb kbu-triage)

# A .deb built with dpkg-deb from an install into a staging tree (no network).
deb: native man completion
	@scripts/deps --build --deb
	@packaging/mkdeb $(BUILD)

clean:
	rm -rf $(BUILD)
