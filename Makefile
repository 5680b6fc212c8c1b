# qd: top-level build. `make` builds everything; `make check` and `make run`
# first install what they need (scripts/deps), then test or run in the VM.
TOP	:= $(CURDIR)
KVER	?= $(shell $(TOP)/scripts/kver 2>/dev/null)
KDIR	?= /lib/modules/$(KVER)/build
CACHE	?= $(shell $(TOP)/scripts/cachedir)
export TOP KVER KDIR CACHE

.PHONY: all deps kmod kmod-debug libqd tools apps selftests unit check check-debug fuzz run bench vm clean

all: kmod libqd tools apps selftests

deps:
	@$(TOP)/scripts/deps

kmod:
	$(MAKE) -C $(KDIR) M=$(TOP)/kmod W=1 CONFIG_QD_SELFTEST=y modules

libqd:
	$(MAKE) -C libqd

tools: libqd
	$(MAKE) -C tools

apps: libqd
	$(MAKE) -C apps

selftests: libqd
	$(MAKE) -C selftests

# Host unit tests of libqd and of the code shared with the module (ASan+UBSan).
unit:
	$(MAKE) -C libqd unit

check: deps
	@$(TOP)/scripts/check

# The kernel tests on a debug guest kernel (KASAN, lockdep, kmemleak...),
# built once into the cache; and a long fuzz run (QD_FUZZ_SECS, default
# 1200) on it, or on Debian's kernel while it is not built.
check-debug: deps
	@$(TOP)/scripts/check-debug

fuzz: deps
	@$(TOP)/scripts/fuzz

# qd.ko for the debug kernel (.debug/kmod/qd.ko); the kernel must be built.
kmod-debug:
	@$(TOP)/scripts/debug-kmod

run: deps
	@$(MAKE) --no-print-directory all >/dev/null
	@$(TOP)/scripts/vm --timeout 900 -- $(TOP)/scripts/demo

# fio in the VM: qd's fio engine against io_uring, libaio and psync on
# null_blk and the guest's NVMe device (tools/fio/bench; about 12 minutes).
# QD_BENCH_ARGS adds options (e.g. --depths 32 --runtime 3 --json FILE).
bench: deps
	@$(MAKE) --no-print-directory all >/dev/null
	@$(TOP)/scripts/vm --timeout 1800 -- $(TOP)/tools/fio/bench $(QD_BENCH_ARGS)

vm: deps all
	@$(TOP)/scripts/vm --interactive

clean:
	-$(MAKE) -C $(KDIR) M=$(TOP)/kmod clean
	-$(MAKE) -C libqd clean
	-$(MAKE) -C tools clean
	-$(MAKE) -C apps clean
	-$(MAKE) -C selftests clean
