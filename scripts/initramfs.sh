#!/usr/bin/env bash
# Make the test initramfs: busybox, the KVM modules of the test kernel, the
# project's module and selftests, the guest-side scripts.
#   KDIR=... TESTS=<selftests dir> VMM=<vmm binaries dir> initramfs.sh <output.cpio.gz>
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
cp "$TESTS"/force_spec_ctrl_* "$root/tests/"
rm -f "$root"/tests/*.o "$root"/tests/*.d
# The userspace crate's binaries and the pools its example VMM runs with.
cp "$VMM"/kfsc-example-vmm "$VMM"/kfsc-policy "$root/tests/"
mkdir -p "$root/tests/pools"
cp "$KFSC_ROOT"/vmm/pools/*.json "$root/tests/pools/"
cp "$KFSC_ROOT/scripts/guest/init" "$root/init"
cp "$KFSC_ROOT/scripts/guest/lib.sh" "$KFSC_ROOT/scripts/guest/lifecycle.sh" \
	"$KFSC_ROOT/scripts/guest/kmemleak.sh" "$root/"
cp "$KFSC_ROOT"/scripts/guest/suites/* "$root/suites/"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
