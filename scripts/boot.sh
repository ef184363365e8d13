#!/usr/bin/env bash
# make boot SUITE=<suite> [MODEL=<cpu model>]: build what one boot of make
# check needs and run that boot alone, as make check runs it
# (scripts/boots.list gives its model, CPUs, kernel and arguments; MODEL
# replaces the model). Logs in out/boot/; the verdict as make check counts
# it, and the exit status says whether everything passed.
source "$(dirname "$0")/lib.sh"
suite=${SUITE:?usage: make boot SUITE=<suite> [MODEL=<cpu model>]}
entry=$(grep -v '^#' "$KFSC_ROOT/scripts/boots.list" | awk -v s="$suite" '$1 == s')
[ -n "$entry" ] || die "no suite '$suite' in scripts/boots.list"
read -r _ model cpus kernel _ args <<<"$entry"
model=${MODEL:-$model}
logs=$KFSC_ROOT/out/boot
mkdir -p "$logs"

"$KFSC_ROOT/scripts/deps.sh"
variant=
[ "$kernel" = debug ] && variant=debug
KDIR=$(KFSC_KERNEL_VARIANT=$variant "$KFSC_ROOT/scripts/kernel.sh" | tail -n 1)
export KDIR
"$KFSC_ROOT/scripts/module.sh"
TESTS=$("$KFSC_ROOT/scripts/selftests.sh" | tail -n 1)
export TESTS
if [ "$model" = qemu ]; then
	# shellcheck disable=SC2086 # kernel arguments, word-split
	"$KFSC_ROOT/scripts/qemu-run.sh" "$suite" "$logs" || true
else
	BOCHS=$("$KFSC_ROOT/scripts/bochs.sh" | tail -n 1)
	VMM=$("$KFSC_ROOT/scripts/vmm.sh" build | tail -n 1)
	QEMU=
	[ "$kernel" = main ] && QEMU=$("$KFSC_ROOT/scripts/qemu.sh" | tail -n 1)
	export BOCHS VMM QEMU
	INITRD=$logs/initramfs-$kernel.cpio.gz
	export INITRD
	"$KFSC_ROOT/scripts/initramfs.sh" "$INITRD"
	if [ "$model" = pool ]; then
		# shellcheck disable=SC2086 # the route, word-split
		"$KFSC_ROOT/scripts/pool-run.sh" "$suite" "$logs" $args || true
		rc=0 i=0
		for _ in $args; do
			i=$((i + 1))
			"$KFSC_ROOT/scripts/parse-results.sh" "$logs/pool-hop-$suite-$i.serial" \
				"pool-hop-$suite-$i" || rc=1
		done
		exit $rc
	fi
	# shellcheck disable=SC2086 # kernel arguments, word-split
	KFSC_BOCHS_CPUS=$cpus "$KFSC_ROOT/scripts/bochs-run.sh" "$suite" "$model" "$logs" $args || true
fi
"$KFSC_ROOT/scripts/parse-results.sh" "$logs/$suite.serial" "$suite"
