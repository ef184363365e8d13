#!/usr/bin/env bash
# make errata-proof: each errata check must fail on a Bochs that lacks the
# corresponding fix of scripts/bochs/, or it would prove nothing. Builds one
# Bochs per left-out fix (cached), boots the gate suites on it, and succeeds
# only if each fails the way its erratum predicts.
source "$(dirname "$0")/lib.sh"
logs=$KFSC_ROOT/out/errata-proof
kfsc_prepare "$logs"
rc=0
# expect NAME LEFT-OUT SUITE ARGS PATTERN [MODEL [CPUS]]: the boot's logs
# must show PATTERN.
expect() {
	local name=$1 unfixed=$2 suite=$3 args=$4 pattern=$5 model=${6:-sapphire_rapids} cpus=${7:-1}
	BOCHS=$(KFSC_BOCHS_UNFIXED=$unfixed "$KFSC_ROOT/scripts/bochs.sh")
	KFSC_RUN_TAG=without-$unfixed KFSC_BOCHS_TIMEOUT=300 BOCHS=$BOCHS KFSC_BOCHS_CPUS=$cpus \
		"$KFSC_ROOT/scripts/bochs-run.sh" "$suite" "$model" "$logs" $args || true
	if cat "$logs/$suite-without-$unfixed".{bochs,serial} | grep -qE "$pattern"; then
		echo "PASS errata-proof: without $unfixed, $name"
	else
		echo "FAIL errata-proof: without $unfixed, $name: /$pattern/ not seen"
		rc=1
	fi
}
expect "the guest reads a stale shadow (erratum 1)" 0001 bochs-spr "" \
	'not ok [0-9]+ guest RDMSR after WRMSR'
expect "RSM panics on a 5-level host (erratum 2)" 0002 bochs-spr "" \
	'SMM restore: CR4 consistency check failed'
expect "VM entry of a 5-level guest panics on a 4-level host (erratum 2)" 0002 bochs-spr-4level no5lvl \
	'VMENTER CR4 is broken'
expect "VM entry with APICv fails (erratum 3)" 0003 bochs-spr-4level no5lvl \
	'Posted Interrupt Descriptor phy addr malformed'
expect "host interrupts do not exit a guest running with IF=0 (erratum 5)" 0004 bochs-spr-4level no5lvl \
	'not ok [0-9]+ 0 host-interrupt exits'
expect "a Linux guest triple-faults in its decompressor under EPT (erratum 6)" 0005 bochs-tgl-qemu "" \
	'KFSC-RESULT FAIL real guest reaches userspace'
expect "the AMD model has no IA32_SPEC_CTRL (AMD SPEC_CTRL, V_SPEC_CTRL)" 0006 bochs-ryzen "" \
	'not ok 1 CPUID Fn8000_0008 EBX' ryzen
expect "host interrupts do not exit an SVM guest running with IF=0 (erratum 7)" 0007 bochs-ryzen "" \
	'not ok [0-9]+ 0 host-interrupt exits' ryzen
expect "an idle CPU polling in MWAIT misses the store that wakes it (erratum 8)" 0008 bochs-spr-smp "" \
	"KFSC-HOST-TIMEOUT .* in test 'cpu: idle CPUs in MWAIT wake for a store" sapphire_rapids 5
expect "the Intel models report Bochs' mitigation facts, not their parts' (0010)" 0010 bochs-icl msr.allow_writes=on \
	'KFSC-RESULT FAIL cpu: corei7_icelake_u IA32_ARCH_CAPABILITIES' corei7_icelake_u
exit $rc
