#!/usr/bin/env bash
# Style gates: checkpatch --strict on every patch of the KVM series, QEMU's
# checkpatch on the QEMU series, rustfmt on the module's Rust, clippy through
# Kbuild (CLIPPY=1).
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
# The QEMU series, the same way, with QEMU's checkpatch: no errors; of the
# warnings only the two the cover letter explains (new files under
# target/i386/kvm/, already in MAINTAINERS; a linux-headers file that cannot
# come from update-linux-headers.sh while the capability is out of tree).
qsrc=$(ls -d "$KFSC_CACHE"/qemu/src-* | head -n1)
qseries=("$KFSC_ROOT"/qemu/patches/*.patch)
qtotal=$((${#qseries[@]} - 1))
grep -q '\*\*\* \(SUBJECT\|BLURB\) HERE' "${qseries[0]}" &&
	{ echo "qemu series: the cover letter is a template"; rc=1; }
for i in "${!qseries[@]}"; do
	p=${qseries[$i]}
	grep -q "^Subject: \[RFC PATCH $i/$qtotal\]" "$p" ||
		{ echo "qemu series: $(basename "$p") is not [RFC PATCH $i/$qtotal]"; rc=1; }
	[ "$i" -eq 0 ] && continue
	out=$(cd "$qsrc" && perl scripts/checkpatch.pl --no-tree "$p" 2>&1)
	grep -q '^total: 0 errors' <<<"$out" || { echo "qemu checkpatch: $(basename "$p"):"; echo "$out"; rc=1; }
	unexpected=$(grep '^WARNING' <<<"$out" | grep -v \
		-e 'does MAINTAINERS need updating' -e 'are you using scripts/update-linux-headers.sh' || true)
	[ -z "$unexpected" ] || { echo "qemu checkpatch: $(basename "$p"): $unexpected"; rc=1; }
done
# One definition of the ABI: QEMU's copy of the header is the project's.
cmp "$qsrc/linux-headers/linux/kvm_force_spec_ctrl.h" "$KFSC_ROOT/include/uapi/linux/kvm_force_spec_ctrl.h" ||
	{ echo "qemu/patches: linux-headers/linux/kvm_force_spec_ctrl.h differs from include/uapi"; rc=1; }
rustfmt --config-path "$src/.rustfmt.toml" --check "$KFSC_ROOT"/rust/*.rs "$KFSC_ROOT"/rust/host/src/*.rs \
	"$KFSC_ROOT"/rust/host/tests/*.rs || rc=1
KDIR=$KDIR CLIPPY=1 "$KFSC_ROOT/scripts/module.sh" || rc=1
exit $rc
