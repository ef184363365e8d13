#!/usr/bin/env bash
# Fail if a number of include/uapi/linux/kvm_force_spec_ctrl.h collides with
# the target kernel's <linux/kvm.h>: every KVM_CAP_* and every KVMIO ioctl of
# the kernel becomes a case label next to ours, and the compiler rejects a
# duplicate case value, naming both.
#   abi-check.sh <kernel build dir>
source "$(dirname "$0")/lib.sh"
kdir=$1
inc=$kdir/usr/include
[ -f "$inc/linux/kvm.h" ] || die "no uapi headers in $inc (make headers)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
caps=$(grep -hoE '^#define KVM_CAP_[A-Z0-9_]+[[:space:]]+[0-9]+' "$inc/linux/kvm.h" | awk '{print $2}')
ioctls=$(grep -hE '^#define KVM_[A-Z0-9_]+[[:space:]]+_IO[RW]*\(KVMIO' "$inc/linux/kvm.h" "$inc/asm/kvm.h" |
	awk '{print $2}' | sort -u)
{
	echo '#include <linux/kvm.h>'
	echo '#include <linux/kvm_force_spec_ctrl.h>'
	echo 'int main(int argc, char **argv) {'
	echo 'switch ((unsigned long)argc) {'
	echo 'case KVM_CAP_FORCE_SPEC_CTRL: return 1;'
	for c in $caps; do echo "case $c: return 2;"; done
	echo '}'
	echo 'switch ((unsigned long)argv) {'
	echo 'case KVM_GET_SUPPORTED_FORCE_SPEC_CTRL: return 3;'
	for i in $ioctls; do echo "case $i: return 4;"; done
	echo '}'
	echo 'return 0; }'
} >"$tmp/check.c"
gcc -Wall -Werror -I "$KFSC_ROOT/include/uapi" -isystem "$inc" -c "$tmp/check.c" -o "$tmp/check.o" ||
	die "the ABI header collides with $inc/linux/kvm.h"
log "abi: no collision with $(echo "$caps" | wc -l) capabilities and $(echo "$ioctls" | wc -l) ioctls of $inc/linux/kvm.h"
