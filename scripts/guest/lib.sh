# Helpers for the guest-side suites (busybox sh, or the host's sh under
# virtme-ng). $T holds the selftests, $M the modules.
T=${KFSC_TESTS:-/tests}
M=${KFSC_MODULES:-/lib/modules}
# Each test prints one KFSC-RESULT line that the harness counts; a test
# that cannot run fails.

# t NAME TIMEOUT CMD...: run a test with a timeout.
t() {
	name=$1 tmo=$2
	shift 2
	echo "KFSC-BEGIN $name"
	timeout "$tmo" "$@"
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "KFSC-RESULT PASS $name"
	else
		[ $rc -eq 143 ] && echo "KFSC-TIMEOUT $name after ${tmo}s"
		echo "KFSC-RESULT FAIL $name (exit $rc)"
	fi
	return $rc
}

# must CMD...: a setup step; on failure every later test is meaningless.
must() {
	if ! "$@"; then
		echo "KFSC-RESULT FAIL setup: $*"
		echo "KFSC-DONE"
		sleep 1
		poweroff -f
	fi
}

# load_kvm VENDOR: kvm.ko and its vendor module (kvm_intel, kvm_amd).
load_kvm() {
	must insmod "$M"/irqbypass.ko
	must insmod "$M"/kvm.ko
	must insmod "$M"/kvm-"$1".ko
}

# gate NAME TIMEOUT CMD...: a test every later result depends on (the
# emulator errata checks): on failure, the suite stops here.
gate() {
	t "$@" && return 0
	echo "KFSC-RESULT FAIL gate: later tests of this suite are void"
	echo "KFSC-DONE"
	sleep 1
	poweroff -f
}

# A module life-cycle step as a test.
insmod_fsc() { t "insmod kvm_force_spec_ctrl" 60 insmod "$M"/kvm_force_spec_ctrl.ko; }
rmmod_fsc() { t "rmmod kvm_force_spec_ctrl" 60 rmmod kvm_force_spec_ctrl; }

# forcing_tests BACKEND [MODULE ARGS...]: the forcing selftests with the
# module loaded (with these parameters), expecting this backend.
forcing_tests() {
	backend=$1
	shift
	t "insmod kvm_force_spec_ctrl $*" 60 insmod "$M"/kvm_force_spec_ctrl.ko "$@"
	export FSC_BACKEND=$backend
	t "$backend: errata_test" 300 "$T"/force_spec_ctrl_errata_test
	t "$backend: invalid_test" 300 "$T"/force_spec_ctrl_invalid_test
	t "$backend: guest_test" 600 "$T"/force_spec_ctrl_guest_test
	t "$backend: migration_test" 300 "$T"/force_spec_ctrl_migration_test
	t "$backend: exits_test" 600 "$T"/force_spec_ctrl_exits_test
	t "$backend: reset_test" 300 "$T"/force_spec_ctrl_reset_test
	unset FSC_BACKEND
	rmmod_fsc
}
