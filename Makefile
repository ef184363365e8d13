# SPDX-License-Identifier: GPL-2.0
#
# kvm-force-spec-ctrl. The two entry points:
#   make demo    a Linux guest migrates across three emulated hosts (the pool run), one table
#   make check   every build and test, both emulators; ends "N passed, N failed"
# Both install what they need (scripts/deps.sh). Builds are cached outside
# the repository, in $(KFSC_CACHE) (default /var/cache/kvm-force-spec-ctrl).
#
# The module itself is Kbuild's (see Kbuild): `make module` builds it
# against the test kernel; `make module CLIPPY=1` runs clippy as it builds.

SHELL := /bin/bash
S := scripts

.PHONY: all check demo boot bench soak errata-proof deps kernel module selftests bochs host-test vmm lint clean

all: module

check:
	$(S)/check.sh

demo:
	$(S)/demo.sh

# One boot of make check alone: make boot SUITE=bochs-ryzen [MODEL=...].
boot:
	SUITE=$(SUITE) MODEL=$(MODEL) $(S)/boot.sh

# The errata checks fail on Bochs without the fixes (one Bochs per fix).
errata-proof:
	$(S)/errata-proof.sh

# Backend comparison: exits and guest TSC cycles per WRMSR (not a test).
bench:
	$(S)/bench.sh

# The randomized ABI driver for long (SOAK_STEPS per backend, KFSC_SEED).
soak:
	$(S)/soak.sh

deps:
	$(S)/deps.sh

kernel: deps
	$(S)/kernel.sh

module: kernel
	KDIR=$$($(S)/kernel.sh) $(S)/module.sh

selftests: kernel
	KDIR=$$($(S)/kernel.sh) $(S)/selftests.sh

bochs: deps
	$(S)/bochs.sh

host-test: deps
	$(S)/host-test.sh

# The userspace crate (vmm/): tests, clippy and rustfmt, static binaries.
vmm: deps
	$(S)/vmm.sh test && $(S)/vmm.sh lint && $(S)/vmm.sh build

# checkpatch --strict of the KVM series, rustfmt and clippy of the module.
lint: module
	$(S)/lint.sh

clean:
	rm -rf out rust/abi_generated.rs
	find rust -name '*.o' -o -name '*.ko' -o -name '*.mod*' -o -name '.*.cmd' | xargs rm -f
	rm -f Module.symvers modules.order rust/modules.order
