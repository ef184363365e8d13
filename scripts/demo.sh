#!/usr/bin/env bash
# make demo: build what is needed, boot Bochs sapphire_rapids, load the
# module, boot a Linux guest under the project's QEMU with BHI_DIS_S forced
# on, change the forcing over QMP, print what the guest believes beside what
# the hardware runs (scripts/guest/suites/demo).
source "$(dirname "$0")/lib.sh"
logs=$KFSC_ROOT/out/demo
kfsc_prepare "$logs"
# parse-results.sh judges the run below, after the table.
"$KFSC_ROOT/scripts/bochs-run.sh" demo sapphire_rapids "$logs" || true
echo
echo "=== make demo: a Linux guest under QEMU + KVM, inside Bochs sapphire_rapids ==="
tr -d '\r' <"$logs/demo.serial" | sed -n '/KFSC-DEMO-BEGIN/,/KFSC-DEMO-END/p' | sed '1d;$d' |
	grep -vE '^\[ *[0-9]+\.[0-9]+\]|^Random seed'
echo "==="
"$KFSC_ROOT/scripts/parse-results.sh" "$logs/demo.serial" demo >/dev/null ||
	die "demo failed; serial log: $logs/demo.serial"
