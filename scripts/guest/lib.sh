# Helpers for the guest-side suites (busybox sh, or the host's sh under
# virtme-ng). $T holds the selftests, $M the modules.
T=${KFSC_TESTS:-/tests}
M=${KFSC_MODULES:-/lib/modules}
# Each test prints one KFSC-RESULT line on the console, for people, and one
# KTAP line ("ok N name", "not ok N name") on the results channel, which
# only the suites write, so that no kernel message can split a result: the
# second serial port in Bochs (kfsc.ktap=/dev/ttyS1 on the command line, the
# init exports it), a file under virtme-ng (scripts/qemu-run.sh). A suite
# declares its plan first (plan N); the harness counts the KTAP lines only,
# and fails a suite whose count differs from its plan, that has no end
# marker ("# KFSC-END", written by the init after the suite), or that wrote
# anything else there (scripts/parse-results.sh). A test that cannot run
# fails. Descriptor 7 is the channel (realguest.sh uses 3 and 4 for QMP).
if [ -n "${KFSC_KTAP:-}" ]; then
	exec 7>>"$KFSC_KTAP"
else
	echo "KFSC-ERROR no KTAP channel (KFSC_KTAP unset): no result can count"
	exec 7>/dev/null
fi
KFSC_N=0

# plan N: the number of results the suite will report, before the first.
plan() {
	echo "KTAP version 1" >&7
	echo "1..$1" >&7
	echo "KFSC-PLAN $1"
}

# result PASS|FAIL NAME: one result, on the console and the channel ('#'
# would start a KTAP directive: dropped from the name there).
result() {
	KFSC_N=$((KFSC_N + 1))
	echo "KFSC-RESULT $1 $2"
	set -- "$1" "$(printf '%s' "$2" | tr '#\n' '  ')"
	if [ "$1" = PASS ]; then
		echo "ok $KFSC_N $2" >&7
	else
		echo "not ok $KFSC_N $2" >&7
	fi
	# The guest's uptime at each result (a KTAP diagnostic): where a boot
	# spends its time, for trimming the check's budget.
	read -r up _ </proc/uptime 2>/dev/null && echo "# uptime ${up}s" >&7
}

# abort: end the suite now (a setup step or a gate failed): the missing
# results then fail the plan.
abort() {
	echo "# KFSC-END aborted" >&7
	echo "KFSC-DONE"
	sleep 1
	poweroff -f
}

# t NAME TIMEOUT CMD...: run a test with a timeout. When it fires, dump
# what shows where the test is stuck (its kernel stack, the debug views)
# before killing it.
t() {
	name=$1 tmo=$2
	shift 2
	echo "KFSC-BEGIN $name"
	"$@" &
	pid=$!
	(
		sleep "$tmo"
		echo "KFSC-TIMEOUT $name after ${tmo}s"
		for task in /proc/"$pid"/task/*; do
			echo "stack of ${task##*/}:"
			cat "$task/stack" 2>/dev/null
		done
		for f in /sys/kernel/debug/kvm/*/vcpu*/force_spec_ctrl; do
			[ -e "$f" ] && { echo "$f:"; cat "$f"; }
		done
		kill -9 "$pid"
	) &
	watchdog=$!
	wait "$pid"
	rc=$?
	kill "$watchdog" 2>/dev/null
	wait "$watchdog" 2>/dev/null
	if [ $rc -eq 0 ]; then
		result PASS "$name"
	else
		result FAIL "$name (exit $rc)"
	fi
	return $rc
}

# must CMD...: a setup step; on failure every later test is meaningless.
must() {
	if ! "$@"; then
		result FAIL "setup: $*"
		abort
	fi
}

# load_kvm VENDOR [PARAMS...]: kvm.ko and its vendor module (kvm_intel,
# kvm_amd) with these parameters.
load_kvm() {
	vendor=$1
	shift
	must insmod "$M"/irqbypass.ko
	must insmod "$M"/kvm.ko
	must insmod "$M"/kvm-"$vendor".ko "$@"
}

# reload_kvm_intel PARAMS...: kvm_intel again, with other parameters.
reload_kvm_intel() {
	must rmmod kvm_intel
	must insmod "$M"/kvm-intel.ko "$@"
}

# gate NAME TIMEOUT CMD...: a test every later result depends on (the
# emulator errata checks): on failure, the suite stops here.
gate() {
	t "$@" && return 0
	echo "gate failed: later tests of this suite are void"
	abort
}

# A module life-cycle step as a test.
insmod_fsc() { t "insmod kvm_force_spec_ctrl" 60 insmod "$M"/kvm_force_spec_ctrl.ko; }
rmmod_fsc() { t "rmmod kvm_force_spec_ctrl" 60 rmmod kvm_force_spec_ctrl; }

# kmemleak_on: check that the boot has kmemleak (kmemleak=on), and leave
# scanning to kmemleak.sh: the automatic scan, 60 s after boot, would scan
# all memory in the middle of a test.
kmemleak_on() {
	t "kmemleak is on" 10 test -e /sys/kernel/debug/kmemleak
	echo scan=off >/sys/kernel/debug/kmemleak
}

# fault_injection NAME ARGS...: force_spec_ctrl_fault_test as test NAME,
# between the markers inside which parse-results.sh accepts the injected
# failures' allocation-failure reports with their stack dumps, and only
# those.
fault_injection() {
	name=$1
	shift
	echo "KFSC-FAULTS-BEGIN" >/dev/kmsg
	t "$name" 1800 "$T"/force_spec_ctrl_fault_test "$@"
	echo "KFSC-FAULTS-END" >/dev/kmsg
}

# The seed the harness chose for this boot (kfsc.seed=, hex).
SEED=0x$(sed -n 's/.*kfsc\.seed=\([0-9a-f]*\).*/\1/p' /proc/cmdline)

# forcing_tests BACKEND [MODULE ARGS...]: the forcing selftests with the
# module loaded (with these parameters), expecting this backend.
forcing_tests() {
	backend=$1
	shift
	t "insmod kvm_force_spec_ctrl $*" 60 insmod "$M"/kvm_force_spec_ctrl.ko "$@"
	export FSC_BACKEND=$backend
	t "$backend: invalid_test" 300 "$T"/force_spec_ctrl_invalid_test
	t "$backend: guest_test" 600 "$T"/force_spec_ctrl_guest_test
	t "$backend: migration_test" 300 "$T"/force_spec_ctrl_migration_test
	t "$backend: exits_test" 600 "$T"/force_spec_ctrl_exits_test
	t "$backend: reset_test" 300 "$T"/force_spec_ctrl_reset_test
	t "$backend: override_test" 300 "$T"/force_spec_ctrl_override_test
	t "$backend: nested_test" 300 "$T"/force_spec_ctrl_nested_test
	t "$backend: nocpuid_test" 300 "$T"/force_spec_ctrl_nocpuid_test
	t "$backend: filter_test" 300 "$T"/force_spec_ctrl_filter_test
	# 4000 steps: about 30 s of the budget per backend on the main kernel
	# (10^4 took 74 s); every boot draws a new seed, and make soak runs
	# long ones.
	t "$backend: random_test (${RANDOM_STEPS:-4000} steps, seed $SEED)" 1200 \
		"$T"/force_spec_ctrl_random_test -s "$SEED" -n "${RANDOM_STEPS:-4000}"
	unset FSC_BACKEND
	rmmod_fsc
}

# fact MODEL NAME: what the table of the Bochs Intel models
# (cpu-facts.list, beside this file) says the model's part reports as NAME
# (a column of its header line).
fact() {
	awk -v m="$1" -v n="$2" '
		/^#/ || NF == 0 { next }
		!header { for (i = 1; i <= NF; i++) col[$i] = i; header = 1; next }
		$1 == m && (n in col) { print $col[n]; found = 1 }
		END { exit !found }' "$(dirname "$0")/../cpu-facts.list" && return 0
	echo "no fact $2 of $1 in cpu-facts.list" >&2
	return 1
}

# fact_is MODEL NAME: the booted CPU reports NAME as the table says.
fact_is() {
	want=$(fact "$1" "$2") || return 1
	got=$(/bin/cpu-facts "$2") || return 1
	[ "$got" = "$want" ] && return 0
	echo "$2 of $1: expected $want, read $got"
	return 1
}

# cpu_facts MODEL: the booted CPU reports what the real part behind the
# Bochs model MODEL reports (scripts/bochs/0010): IA32_ARCH_CAPABILITIES,
# CPUID.(EAX=7,ECX=2):EDX, and the IA32_SPEC_CTRL bits WRMSR accepts (the
# boot needs msr.allow_writes=on). Three results.
cpu_facts() {
	t "cpu: $1 IA32_ARCH_CAPABILITIES is $(fact "$1" arch_capabilities)" 60 \
		fact_is "$1" arch_capabilities
	t "cpu: $1 CPUID.(7,2):EDX is $(fact "$1" cpuid_7_2_edx)" 60 \
		fact_is "$1" cpuid_7_2_edx
	t "cpu: $1 IA32_SPEC_CTRL accepts $(fact "$1" spec_ctrl)" 60 \
		fact_is "$1" spec_ctrl
}

# policy_facts HOSTFILE: kfsc-policy reads this host's facts from KVM (no
# root, no msr driver) and prints them, and they are the real part's of
# vmm/pools/hosts/HOSTFILE.json, on the bits the pool policy decides by
# (kfsc-policy verify): the emulated host is, for the policy, the part it
# names. Needs KVM and the module loaded. Two results.
policy_facts() {
	t "kfsc-policy facts (from KVM) on this $1 host" 60 "$T"/kfsc-policy facts --name "$1"
	t "kfsc-policy verify: this host has the facts of pools/hosts/$1.json" 60 \
		"$T"/kfsc-policy verify "$T"/pools/hosts/"$1".json
}
