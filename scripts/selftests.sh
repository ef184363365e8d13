#!/usr/bin/env bash
# Build the project's selftests (selftests/*.c) with the KVM selftest library
# of the test kernel's tree, statically linked for the initramfs. Prints the
# output directory.
#   KDIR=<kernel build dir> selftests.sh
source "$(dirname "$0")/lib.sh"
KDIR=${KDIR:?KDIR must name the kernel build directory}
src=$(readlink -f "$KDIR/kfsc-src")
out=$KDIR/kfsc-selftests
make -C "$src/tools/testing/selftests/kvm" -f "$KFSC_ROOT/selftests/kvm.mk" \
	OUTPUT="$out" KHDR_INCLUDES="-isystem $KDIR/usr/include" \
	FSC_ROOT="$KFSC_ROOT" LDFLAGS=-static -j"$(nproc)" fsc >"$out.log" 2>&1 ||
	{ tail -n 40 "$out.log" >&2; die "selftests build failed (log: $out.log)"; }
echo "$out/fsc"
