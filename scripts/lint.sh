#!/usr/bin/env bash
# Style gates: checkpatch --strict on every patch of the KVM series, QEMU's
# checkpatch on the QEMU series, rustfmt on the module's Rust, clippy through
# Kbuild (CLIPPY=1).
source "$(dirname "$0")/lib.sh"
kfsc_kernel_env
KDIR=${KDIR:-$("$KFSC_ROOT/scripts/kernel.sh")}
src=$(readlink -f "$KDIR/kfsc-src")
rc=0
# series NAME PREFIX CHECK DIR: a series as sent to a list: a cover letter
# that is not the template, "[PREFIX n/N]" numbering that agrees with the
# files, every patch passing CHECK (a function taking the patch's path).
series() {
	local name=$1 prefix=$2 check=$3 files i total
	files=("$4"/*.patch)
	total=$((${#files[@]} - 1))
	[ "$(basename "${files[0]}")" = 0000-cover-letter.patch ] ||
		{ echo "$name: no 0000-cover-letter.patch"; rc=1; }
	grep -q '\*\*\* \(SUBJECT\|BLURB\) HERE' "${files[0]}" &&
		{ echo "$name: the cover letter is a template"; rc=1; }
	for i in "${!files[@]}"; do
		grep -q "^Subject: \[$prefix 0*$i/$total\]" "${files[$i]}" ||
			{ echo "$name: $(basename "${files[$i]}") is not [$prefix $i/$total]"; rc=1; }
		[ "$i" -eq 0 ] || "$check" "${files[$i]}" || rc=1
	done
}
# The KVM series: checkpatch --strict clean. The kernel here is a release
# tarball without upstream history, so checkpatch cannot look up the ids
# of Fixes: tags (they were checked against the public list archives).
kernel_checkpatch() {
	local out
	out=$(perl "$src/scripts/checkpatch.pl" --strict --no-tree -q --ignore UNKNOWN_COMMIT_ID "$1" 2>&1) ||
		{ echo "checkpatch: $(basename "$1"):"; echo "$out"; return 1; }
}
# The QEMU series, with QEMU's checkpatch: no errors; of the warnings only
# the two its cover letter explains (new files under target/i386/kvm/,
# already in MAINTAINERS; a linux-headers file that cannot come from
# update-linux-headers.sh while the capability is out of tree).
qsrc=$(ls -d "$KFSC_CACHE"/qemu/src-* | head -n1)
qemu_checkpatch() {
	local out unexpected
	out=$(cd "$qsrc" && perl scripts/checkpatch.pl --no-tree "$1" 2>&1)
	grep -q '^total: 0 errors' <<<"$out" ||
		{ echo "qemu checkpatch: $(basename "$1"):"; echo "$out"; return 1; }
	unexpected=$(grep '^WARNING' <<<"$out" | grep -v -e 'does MAINTAINERS need updating' \
		-e 'are you using scripts/update-linux-headers.sh' || true)
	[ -z "$unexpected" ] || { echo "qemu checkpatch: $(basename "$1"): $unexpected"; return 1; }
}
series "KVM series" PATCH kernel_checkpatch "$KFSC_ROOT/kernel/patches"
# Its two fixes of stock KVM, on their own for stable.
series "KVM stable series" PATCH kernel_checkpatch "$KFSC_ROOT/kernel/stable"
series "QEMU series" "RFC PATCH v2" qemu_checkpatch "$KFSC_ROOT/qemu/patches"
# The harness' own kernel module (the pool run's port 0xE9).
out=$(perl "$src/scripts/checkpatch.pl" --strict --no-tree -q -f "$KFSC_ROOT/scripts/guest/e9/e9.c" 2>&1) ||
	{ echo "checkpatch: scripts/guest/e9/e9.c:"; echo "$out"; rc=1; }
# One definition of the ABI: QEMU's copy of the header is the project's.
cmp "$qsrc/linux-headers/linux/kvm_force_spec_ctrl.h" "$KFSC_ROOT/include/uapi/linux/kvm_force_spec_ctrl.h" ||
	{ echo "qemu/patches: linux-headers/linux/kvm_force_spec_ctrl.h differs from include/uapi"; rc=1; }
rustfmt --config-path "$src/.rustfmt.toml" --check "$KFSC_ROOT"/rust/*.rs "$KFSC_ROOT"/rust/host/src/*.rs \
	"$KFSC_ROOT"/rust/host/tests/*.rs || rc=1
KDIR=$KDIR CLIPPY=1 "$KFSC_ROOT/scripts/module.sh" || rc=1
exit $rc
