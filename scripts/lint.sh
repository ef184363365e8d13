#!/usr/bin/env bash
# Style gates: checkpatch --strict on every patch of the KVM series, rustfmt
# on the module's Rust, clippy through Kbuild (CLIPPY=1).
source "$(dirname "$0")/lib.sh"
kfsc_kernel_env
KDIR=${KDIR:-$("$KFSC_ROOT/scripts/kernel.sh")}
src=$(readlink -f "$KDIR/kfsc-src")
rc=0
for p in "$KFSC_ROOT"/kernel/patches/*.patch; do
	out=$(perl "$src/scripts/checkpatch.pl" --strict --no-tree -q "$p" 2>&1) || {
		echo "checkpatch: $(basename "$p"):"; echo "$out"; rc=1; }
done
rustfmt --config-path "$src/.rustfmt.toml" --check "$KFSC_ROOT"/rust/*.rs "$KFSC_ROOT"/rust/host/src/*.rs \
	"$KFSC_ROOT"/rust/host/tests/*.rs || rc=1
KDIR=$KDIR CLIPPY=1 "$KFSC_ROOT/scripts/module.sh" || rc=1
exit $rc
