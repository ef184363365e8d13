#!/usr/bin/env bash
# make demo: build what is needed, boot Bochs sapphire_rapids, load the
# module, run the demo program, print what it printed.
source "$(dirname "$0")/lib.sh"
logs=$KFSC_ROOT/out/demo
mkdir -p "$logs"
"$KFSC_ROOT/scripts/deps.sh"
KDIR=$("$KFSC_ROOT/scripts/kernel.sh")
export KDIR
"$KFSC_ROOT/scripts/module.sh"
TESTS=$("$KFSC_ROOT/scripts/selftests.sh")
BOCHS=$("$KFSC_ROOT/scripts/bochs.sh")
INITRD=$logs/initramfs.cpio.gz
export TESTS BOCHS INITRD
"$KFSC_ROOT/scripts/initramfs.sh" "$INITRD"
"$KFSC_ROOT/scripts/bochs-run.sh" demo sapphire_rapids "$logs"
echo
echo "=== Bochs sapphire_rapids: kvm_force_spec_ctrl demo ==="
tr -d '\r' <"$logs/demo.serial" | sed -n '/KFSC-DEMO-BEGIN/,/KFSC-DEMO-END/p' | sed '1d;$d' |
	grep -vE '^\[ *[0-9]+\.[0-9]+\]|^Random seed'
echo "==="
"$KFSC_ROOT/scripts/parse-results.sh" "$logs/demo.serial" demo >/dev/null ||
	die "demo failed; serial log: $logs/demo.serial"
