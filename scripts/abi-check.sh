#!/usr/bin/env bash
# Fail if a number of include/uapi/linux/kvm_force_spec_ctrl.h collides with
# the target kernel's <linux/kvm.h>: every KVM_CAP_* and the number of every
# KVMIO ioctl (of any architecture) become case labels next to ours, and the
# compiler rejects a duplicate case value, naming both.
#   abi-check.sh <kernel build dir>
source "$(dirname "$0")/lib.sh"
kdir=$1
inc=$kdir/usr/include
[ -f "$inc/linux/kvm.h" ] || die "no uapi headers in $inc (make headers)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
caps=$(grep -hoE '^#define KVM_CAP_[A-Z0-9_]+[[:space:]]+[0-9]+' "$inc/linux/kvm.h" | awk '{print $2}')
ioctls=$(grep -hoE '_IO[RW]*\(KVMIO, *0x[0-9a-fA-F]+' "$inc/linux/kvm.h" "$inc/asm/kvm.h" |
	sed 's/.*0x/0x/' | tr 'A-F' 'a-f' | sort -u)
{
	echo '#include <linux/kvm.h>'
	echo '#include <linux/kvm_force_spec_ctrl.h>'
	echo 'int main(int argc, char **argv) {'
	echo 'switch ((unsigned long)argc) {'
	echo 'case KVM_CAP_FORCE_SPEC_CTRL: return 1;'
	for c in $caps; do echo "case $c: return 2;"; done
	echo '}'
	echo 'switch ((unsigned long)argv) {'
	echo 'case _IOC_NR(KVM_GET_SUPPORTED_FORCE_SPEC_CTRL): return 3;'
	for i in $ioctls; do echo "case $i: return 4;"; done
	echo '}'
	echo 'return 0; }'
} >"$tmp/check.c"
gcc -Wall -Werror -I "$KFSC_ROOT/include/uapi" -isystem "$inc" -c "$tmp/check.c" -o "$tmp/check.o" >&2 ||
	die "the ABI header collides with $inc/linux/kvm.h"
log "abi: no collision with $(echo "$caps" | wc -l) capabilities and $(echo "$ioctls" | wc -l) KVMIO ioctl numbers of $inc/linux/kvm.h"
