# SPDX-License-Identifier: GPL-2.0
#
# btrfs tree readahead: the patched kernel, the Rust module, the userspace
# tools and the VM harness. Everything generated goes under build/.
#
#   make check    build everything, run the tests in VMs, print "N passed, N failed"
#   make check-full   the same with every test's KASAN run and longer rounds
#   make demo     build everything, time the module against stock btrfs on simulated disks
#   make shell    an interactive shell in the VM (module in /reada, tests in /tests)
#
# Three kernels, each in its own tree: KVARIANT=debug (lockdep, atomic-sleep,
# list and hung-task checks, slab debugging, fault injection, KUnit; what
# `make check` runs every test on), KVARIANT=kasan (debug less lockdep and
# KUnit, plus KASAN and kmemleak; `make check` runs the detector self-tests,
# the load test, a concurrency and two fault tests on it too, `make
# check-full` every readahead and scrub test)
# and KVARIANT=release (no debugging; `make demo` and `make bench`).
#
# Knobs: TEST=regex (run only matching tests), V=1 (guest output live),
#        TESTJOBS=n (guest runs at a time, default 2),
#        VM_ACCEL=kvm (KVM instead of TCG), JOBS=n (kernel build parallelism),
#        KVARIANT=debug|kasan|release (for `make shell` and the build targets).

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
TOP := $(CURDIR)
B := $(TOP)/build
KVARIANT ?= debug
ifeq ($(filter $(KVARIANT),debug kasan release),)
$(error KVARIANT must be debug, kasan or release, not '$(KVARIANT)')
endif
KDIR := $(B)/linux-$(KVARIANT)
KFRAGMENTS := $(addprefix $(TOP)/kernel/,base.config \
	$(if $(filter kasan,$(KVARIANT)),debug.config kasan.config,$(KVARIANT).config))
MODDIR := $(B)/module-$(KVARIANT)
TOOLS_BIN := $(B)/tools-bin
CARGO_TARGET := $(B)/cargo
INITRAMFS := $(B)/initramfs-$(KVARIANT).cpio
BZIMAGE := $(KDIR)/arch/x86/boot/bzImage
JOBS ?= $(shell nproc)

# The kernel's Rust support wants Debian's rustc 1.85 (in /usr/bin) ahead of
# the rustup toolchain, and the matching library sources.
KENV := PATH=/usr/bin:$(PATH) RUST_LIB_SRC=/usr/src/rustc-1.85.0/library
KMAKE := $(KENV) $(MAKE) --no-print-directory -C $(KDIR) LLVM=1
CONFIG_HASH = $(shell cat $(KFRAGMENTS) | sha256sum | cut -c1-16)
VERSION := $(shell git -C $(TOP) describe --always --dirty 2>/dev/null || echo unknown)
MODULE_SOURCES := $(wildcard Kbuild Kconfig rust samples tests/detectors)

.PHONY: all check check-full demo shell deps kernel-tree kernel module tools initramfs lint clean help

all: kernel module tools initramfs

help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@bash tools/setup/install-deps.sh

# The source tree: Debian's linux-source-6.12 with patches/series applied.
kernel-tree: deps
	@bash tools/kernel/prepare-tree.sh $(KDIR) $(TOP)/patches

$(KDIR)/.reada-config-$(CONFIG_HASH): $(KFRAGMENTS) | kernel-tree
	@rm -f $(KDIR)/.reada-config-*
	@bash tools/kernel/configure.sh $(KDIR) $(KFRAGMENTS) -- env $(KENV) $(MAKE) LLVM=1
	@touch $@

kernel: kernel-tree
	@$(MAKE) --no-print-directory $(KDIR)/.reada-config-$(CONFIG_HASH)
	@echo "[kernel] $(KVARIANT): make bzImage modules (first build takes several minutes)"
	@$(KMAKE) -j$(JOBS) bzImage modules | { grep -v '^  \(CC\|AR\|LD\|AS\|HOSTCC\|RUSTC\|BINDGEN\|CALL\|CHK\|UPD\|GEN\|EXPORTS\|SYNC\|WRAP\|SYSHDR\|SYSTBL\|HDRINST\|HOSTLD\|POLICY\|VDSO\|OBJCOPY\|RELOCS\|MKPIGGY\|ZOFFSET\|VOFFSET\|CPUSTR\|MKREQ\|HOSTRUSTC\|RUSTDOC\|PERL\|MKCAP\|BUILD\|KSYMS\|MODPOST\|NM\|SORTTAB\|DESCEND\|INSTALL\|COPY\|LDS\|UNROLL\|GZIP\|XZKERN\|ZSTD\|ASN\.1\)' || true; }
	@test -f $(BZIMAGE)

# The module is built from a copy of its sources so that Kbuild's objects stay
# out of the source tree (6.12 has no separate output folder for M= builds).
module: kernel
	@mkdir -p $(MODDIR)
	@cp -a --parents $(MODULE_SOURCES) $(MODDIR)/
	@$(KMAKE) M=$(MODDIR) BTRFS_READA_VERSION=$(VERSION) modules
	@ls $(MODDIR)/rust/btrfs_reada.ko >/dev/null

tools: deps
	@cd tools && cargo build --release --workspace --quiet
	@mkdir -p $(TOOLS_BIN)
	@for t in reada reada-probe reada-fuzz fill-files fill-groups disksim; do [ ! -x $(CARGO_TARGET)/release/$$t ] || cp --remove-destination $(CARGO_TARGET)/release/$$t $(TOOLS_BIN)/; done

initramfs: module tools
	@bash tools/vm/mkinitramfs.sh $(INITRAMFS) $(MODDIR) $(TOOLS_BIN)

check check-full:
	@$(MAKE) --no-print-directory KVARIANT=debug all
	@$(MAKE) --no-print-directory KVARIANT=kasan kernel module initramfs
	@python3 tools/vm/run-tests.py --builddir $(B) \
		--kernel $(B)/linux-debug/arch/x86/boot/bzImage --initramfs $(B)/initramfs-debug.cpio \
		--kdir $(B)/linux-debug \
		--kasan-kernel $(B)/linux-kasan/arch/x86/boot/bzImage --kasan-initramfs $(B)/initramfs-kasan.cpio \
		--suite $(if $(filter check-full,$@),full,check) $(if $(TESTJOBS),--jobs $(TESTJOBS)) \
		$(if $(TEST),--filter '$(TEST)') $(if $(V),--verbose)

# The main job in a few minutes: `make bench`'s aged btrfs (built once,
# cached in build/bench) on 7 simulated 4 TB rotating disks; the extent and
# csum trees walked plain, forward, forward-always and by the module's
# readahead, and scrub without and with the module, side by side.
demo:
	@$(MAKE) --no-print-directory KVARIANT=release all
	@python3 tools/bench/bench.py --variant demo --drive hdd-4tb \
		--kernel $(B)/linux-release/arch/x86/boot/bzImage --initramfs $(B)/initramfs-release.cpio \
		--cache $(B)/bench --disksim $(TOOLS_BIN)/disksim --out $(B)/demo
	@echo "The full figures (3 runs, both trees at once, the users' jobs, other disk models):" \
		"make bench; recorded in Documentation/benchmarks.md."

shell: all
	@python3 tools/vm/vmrun.py --kernel $(BZIMAGE) --initramfs $(INITRAMFS) \
		--workdir $(B)/vm/shell --disk 1G --disk 1G --disk 1G --shell

clean:
	rm -rf $(B)/module-* $(CARGO_TARGET) $(TOOLS_BIN) $(B)/initramfs-*.cpio $(B)/vm

# Lints, each run by `make check` as a named test.
.PHONY: lint-module-rustfmt lint-module-clippy lint-module-no-panic lint-checkpatch lint-tools
lint-module-rustfmt:
	@$(KENV) rustfmt --check --edition 2021 --config-path $(KDIR)/.rustfmt.toml rust/btrfs_reada.rs $(wildcard samples/*.rs)

# Clippy with the kernel's lint set; any warning fails.
lint-module-clippy: kernel
	@rm -rf $(B)/module-clippy && mkdir -p $(B)/module-clippy
	@cp -a --parents $(MODULE_SOURCES) $(B)/module-clippy/
	@$(KMAKE) M=$(B)/module-clippy CLIPPY=1 modules > $(B)/module-clippy/log 2>&1 || \
		{ tail -40 $(B)/module-clippy/log; echo "lint-module-clippy: the module does not build"; exit 1; }
	@! grep -E '^(warning|error)' -A6 $(B)/module-clippy/log

# Module code returns errors; it never unwraps or panics.
lint-module-no-panic:
	@! grep -nE '\.unwrap\(\)|\.expect\(|panic!|todo!|unimplemented!|unreachable!' rust/*.rs rust/machine/*.rs $(wildcard samples/*.rs)

lint-checkpatch: kernel-tree
	@cd $(KDIR) && scripts/checkpatch.pl --no-tree --strict --ignore FILE_PATH_CHANGES -q $(TOP)/patches/*.patch
	@cd $(KDIR) && scripts/checkpatch.pl --no-tree --strict -q -f $(TOP)/samples/*.c $(TOP)/tests/detectors/*.c

lint-tools:
	@cd tools && cargo fmt --check && cargo clippy --quiet --release --all-targets -- -D warnings

# Benchmarks
# `make bench`: the readahead against the plain walk, stock btrfs and the
# physical limit, on 7 simulated rotating disks (tools/bench; method and
# figures in Documentation/benchmarks.md), on the release kernel. The fixture
# is built once and cached in build/bench. Knobs: BENCH_VARIANT=full-16k
# (the same aging with 16 KiB nodes), full-1disk (on one disk) or users (the jobs of the in-kernel
# users: mount, quota rescan, send, delete, stock against the module, on
# their own fixture), BENCH_DRIVE=hdd-4tb|ssd|nvme|none (the disk model;
# none: no modelled time), BENCH_RUNS=N (runs of each job and mode),
# BENCH_SPEED_FACTOR=F (disksim --speed-factor), BENCH_MAX_IN_FLIGHT=N (the
# module's max_in_flight), BENCH_JOBS='extent csum both scrub',
# BENCH_COMPARE_MODULE=KO (another build of the module, for the release
# kernel: tree jobs also run its readahead, as mode readahead-cmp).
# The last line printed is the path of the JSON with every figure.
.PHONY: bench
bench:
	@$(MAKE) --no-print-directory KVARIANT=release all
	@python3 tools/bench/bench.py --kernel $(B)/linux-release/arch/x86/boot/bzImage \
		--initramfs $(B)/initramfs-release.cpio --cache $(B)/bench --disksim $(TOOLS_BIN)/disksim \
		$(if $(BENCH_VARIANT),--variant $(BENCH_VARIANT)) \
		$(if $(BENCH_DRIVE),--drive $(BENCH_DRIVE)) \
		$(if $(BENCH_RUNS),--runs $(BENCH_RUNS)) \
		$(if $(BENCH_SPEED_FACTOR),--speed-factor $(BENCH_SPEED_FACTOR)) \
		$(if $(BENCH_MAX_IN_FLIGHT),--max-in-flight $(BENCH_MAX_IN_FLIGHT)) \
		$(if $(BENCH_COMPARE_MODULE),--compare-module $(BENCH_COMPARE_MODULE)) \
		$(if $(BENCH_JOBS),--jobs $(BENCH_JOBS))
