#!/bin/sh
# Module life cycle (contract item 11), run from a suite:
#   lifecycle.sh CYCLES
# Each cycle: insmod; a VM enforcing a configuration; the module is in use
# (refcnt >= 1, rmmod fails) while it lives; rmmod succeeds once it is gone. Prints one line per
# failure and exits non-zero on any.
. "$(dirname "$0")/lib.sh"
cycles=$1
fails=0
i=0
while [ $i -lt "$cycles" ]; do
	i=$((i + 1))
	insmod "$M"/kvm_force_spec_ctrl.ko || { echo "cycle $i: insmod failed"; fails=$((fails + 1)); continue; }
	rm -f /tmp/hold.ready
	"$T"/force_spec_ctrl_hold /tmp/hold.ready &
	pid=$!
	n=0
	while [ ! -e /tmp/hold.ready ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
	if [ ! -e /tmp/hold.ready ]; then
		echo "cycle $i: the VM holder did not get ready"; fails=$((fails + 1))
	else
		# The VM pins the module: kmod's rmmod calls that "in use" (EBUSY)
		# from this count; delete_module(2) itself fails with EWOULDBLOCK.
		refcnt=$(cat /sys/module/kvm_force_spec_ctrl/refcnt)
		[ "$refcnt" -ge 1 ] || {
			echo "cycle $i: refcnt $refcnt while a VM uses the module"; fails=$((fails + 1)); }
		out=$(rmmod kvm_force_spec_ctrl 2>&1) && {
			echo "cycle $i: rmmod succeeded while a VM used the module"; fails=$((fails + 1)); }
		case $out in *"temporarily unavailable"*) ;; *)
			echo "cycle $i: rmmod did not fail with EWOULDBLOCK: $out"; fails=$((fails + 1)) ;;
		esac
		[ $i -eq 1 ] && echo "cycle 1: refcnt $refcnt, rmmod: $out"
	fi
	kill "$pid"
	wait "$pid" 2>/dev/null
	if ! rmmod kvm_force_spec_ctrl; then
		echo "cycle $i: rmmod failed after the VM was gone"; fails=$((fails + 1))
	fi
done
echo "lifecycle: $cycles cycles, $fails failures"
[ $fails -eq 0 ]
