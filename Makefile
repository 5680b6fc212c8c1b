# qd: top-level build. `make` builds everything; `make check` and `make run`
# first install what they need (scripts/deps), then test or run in the VM.
TOP	:= $(CURDIR)
KVER	?= $(shell $(TOP)/scripts/kver 2>/dev/null)
KDIR	?= /lib/modules/$(KVER)/build
CACHE	?= $(shell $(TOP)/scripts/cachedir)
export TOP KVER KDIR CACHE

.PHONY: all deps kmod libqd tools selftests unit check run vm clean

all: kmod libqd tools selftests

deps:
	@$(TOP)/scripts/deps

kmod:
	$(MAKE) -C $(KDIR) M=$(TOP)/kmod W=1 CONFIG_QD_SELFTEST=y modules

libqd:
	$(MAKE) -C libqd

tools: libqd
	$(MAKE) -C tools

selftests: libqd
	$(MAKE) -C selftests

# Host unit tests of libqd and of the code shared with the module (ASan+UBSan).
unit:
	$(MAKE) -C libqd unit

check: deps
	@$(TOP)/scripts/check

run: deps
	@$(MAKE) --no-print-directory all >/dev/null
	@$(TOP)/scripts/vm --timeout 900 -- $(TOP)/scripts/demo

vm: deps all
	@$(TOP)/scripts/vm --interactive

clean:
	-$(MAKE) -C $(KDIR) M=$(TOP)/kmod clean
	-$(MAKE) -C libqd clean
	-$(MAKE) -C tools clean
	-$(MAKE) -C selftests clean
