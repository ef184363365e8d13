#!/usr/bin/env bash
# Make the test initramfs: busybox, the KVM modules of the test kernel, the
# project's module and selftests, the guest-side scripts.
#   KDIR=... TESTS=<selftests dir> VMM=<vmm binaries dir> [QEMU=<qemu dir>] \
#     initramfs.sh <output.cpio.gz>
# With QEMU (scripts/qemu.sh's output) it also holds the real guest of the
# real-guest suites in /qemu: QEMU, its firmware, the test kernel's bzImage
# and the guest's own initramfs (scripts/guest/l2/).
source "$(dirname "$0")/lib.sh"
KDIR=${KDIR:?} TESTS=${TESTS:?} VMM=${VMM:?}
out=${1:?output path}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules,tests,suites}
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp $(kfsc_module_files) "$root/lib/modules/"
# Only the tests of the current sources: the build directory may still hold
# binaries of tests since deleted or renamed.
for c in "$KFSC_ROOT"/selftests/*.c; do
	bin=$TESTS/$(basename "$c" .c)
	[ -x "$bin" ] || die "no selftest binary $bin for $c"
	cp "$bin" "$root/tests/"
done
# The userspace crate's binaries and the pools its example VMM runs with.
cp "$VMM"/kfsc-example-vmm "$VMM"/kfsc-policy "$root/tests/"
mkdir -p "$root/tests/pools/hosts"
cp "$KFSC_ROOT"/vmm/pools/*.json "$root/tests/pools/"
cp "$KFSC_ROOT"/vmm/pools/hosts/*.json "$root/tests/pools/hosts/"
cp "$KFSC_ROOT/scripts/guest/init" "$root/init"
cp "$KFSC_ROOT/scripts/guest/lib.sh" "$KFSC_ROOT/scripts/guest/lifecycle.sh" \
	"$KFSC_ROOT/scripts/guest/kmemleak.sh" "$root/"
cp "$KFSC_ROOT"/scripts/guest/suites/* "$root/suites/"
cp "$KFSC_ROOT/scripts/guest/realguest.sh" "$root/"
# What the emulated Intel CPU reports of its mitigations, and what it must
# (cpu_facts in lib.sh).
gcc -static -O2 -Wall -Werror -o "$root/bin/cpu-facts" "$KFSC_ROOT/scripts/guest/cpu-facts.c"
# A file out through Bochs' port 0xE9 (the pool suite's migration stream):
# the e9 module (a copy of its sources built against KDIR) and e9out.
gcc -static -O2 -Wall -Werror -o "$root/bin/e9out" "$KFSC_ROOT/scripts/guest/e9out.c"
cp -r "$KFSC_ROOT/scripts/guest/e9" "$root/e9-build"
# shellcheck disable=SC2046 # the build tree's toolchain flags, word-split
make -C "$KDIR" M="$root/e9-build" $(cat "$KDIR/kfsc-make-flags" 2>/dev/null) modules \
	>"$root/e9-build/log" 2>&1 || { cat "$root/e9-build/log" >&2; die "the e9 module did not build"; }
cp "$root/e9-build/e9.ko" "$root/lib/modules/"
rm -rf "$root/e9-build"
cp "$KFSC_ROOT/scripts/guest/cpu-facts.list" "$root/"
if [ -n "${QEMU:-}" ]; then
	mkdir -p "$root/qemu"
	cp "$QEMU"/qemu-system-x86_64 "$QEMU"/qboot.rom "$QEMU"/linuxboot_dma.bin \
		"$KDIR/arch/x86/boot/bzImage" "$root/qemu/"
	# The guest's initramfs: busybox, its /init, the SSBD tasks.
	l2=$root/l2-root
	mkdir -p "$l2"/{bin,proc,sys,dev}
	cp /bin/busybox "$l2/bin/"
	for applet in sh mount cat grep echo sleep; do ln -s busybox "$l2/bin/$applet"; done
	cp "$KFSC_ROOT/scripts/guest/l2/init" "$l2/init"
	gcc -static -O2 -Wall -Werror -o "$l2/bin/spec-task" "$KFSC_ROOT/scripts/guest/l2/spec-task.c"
	(cd "$l2" && find . | cpio -o -H newc --quiet | gzip -1) >"$root/qemu/l2.gz"
	rm -rf "$l2"
fi
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
