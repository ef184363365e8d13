#!/usr/bin/env bash
# Style gates: checkpatch --strict on every patch of the KVM series, rustfmt
# on the module's Rust, clippy through Kbuild (CLIPPY=1).
source "$(dirname "$0")/lib.sh"
kfsc_kernel_env
KDIR=${KDIR:-$("$KFSC_ROOT/scripts/kernel.sh")}
src=$(readlink -f "$KDIR/kfsc-src")
rc=0
# The series as a KVM-list series: a cover letter, "n/N" numbering that
# agrees with the files, every patch checkpatch --strict clean.
series=("$KFSC_ROOT"/kernel/patches/*.patch)
total=$((${#series[@]} - 1))
[ "$(basename "${series[0]}")" = 0000-cover-letter.patch ] ||
	{ echo "series: no 0000-cover-letter.patch"; rc=1; }
grep -q '\*\*\* \(SUBJECT\|BLURB\) HERE' "${series[0]}" &&
	{ echo "series: the cover letter is a template"; rc=1; }
for i in "${!series[@]}"; do
	p=${series[$i]}
	grep -q "^Subject: \[PATCH $i/$total\]" "$p" ||
		{ echo "series: $(basename "$p") is not [PATCH $i/$total]"; rc=1; }
	[ "$i" -eq 0 ] && continue
	out=$(perl "$src/scripts/checkpatch.pl" --strict --no-tree -q "$p" 2>&1) || {
		echo "checkpatch: $(basename "$p"):"; echo "$out"; rc=1; }
done
rustfmt --config-path "$src/.rustfmt.toml" --check "$KFSC_ROOT"/rust/*.rs "$KFSC_ROOT"/rust/host/src/*.rs \
	"$KFSC_ROOT"/rust/host/tests/*.rs || rc=1
KDIR=$KDIR CLIPPY=1 "$KFSC_ROOT/scripts/module.sh" || rc=1
exit $rc
