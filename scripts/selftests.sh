#!/usr/bin/env bash
# Build the project's selftests (selftests/*.c) with the KVM selftest library
# of the test kernel's tree, statically linked for the initramfs. Prints the
# output directory.
#   KDIR=<kernel build dir> selftests.sh
source "$(dirname "$0")/lib.sh"
KDIR=${KDIR:?KDIR must name the kernel build directory}
src=$(readlink -f "$KDIR/kfsc-src")
out=$KDIR/kfsc-selftests
# Objects of a tree that built from the checkout itself (before the staged
# copy) name a checkout in their .d files: build those once more.
if [ "$(cat "$out/fsc/.src-root" 2>/dev/null)" != "$out/src" ]; then
	rm -f "$out"/fsc/*.o "$out"/fsc/*.d
	mkdir -p "$out/fsc" && echo "$out/src" >"$out/fsc/.src-root"
fi
kfsc_stage_selftests "$KFSC_ROOT" "$out/src"
make -C "$src/tools/testing/selftests/kvm" -f "$out/src/selftests/kvm.mk" \
	OUTPUT="$out" KHDR_INCLUDES="-isystem $KDIR/usr/include" \
	FSC_ROOT="$out/src" LDFLAGS=-static -j"$(nproc)" fsc >"$out.log" 2>&1 ||
	{ tail -n 40 "$out.log" >&2; die "selftests build failed (log: $out.log)"; }
echo "$out/fsc"
