#!/usr/bin/env bash
# make check: everything, from dependencies to emulator boots. Each step and
# each test inside the boots counts; the last line is "N passed, N failed".
# Logs go to out/logs.
source "$(dirname "$0")/lib.sh"
set +e
logs=$KFSC_ROOT/out/logs
rm -rf "$logs" && mkdir -p "$logs"
pass=0 fail=0
result() { # result PASS|FAIL name
	echo "$1 $2"
	if [ "$1" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}
# step NAME CMD...: a build step; its failure ends the run (later steps need it).
step() {
	local name=$1 t0=$SECONDS
	shift
	if "$@" >"$logs/$name.log" 2>&1; then
		result PASS "step: $name ($((SECONDS - t0))s)"
	else
		result FAIL "step: $name ($((SECONDS - t0))s), log out/logs/$name.log:"
		tail -n 30 "$logs/$name.log" | sed 's/^/    /'
		finish
	fi
}
finish() {
	echo "check: total $SECONDS s"
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit $?
}
# boot LABEL LOG: count the results parsed from one serial log.
boot() {
	local line
	while IFS= read -r line; do
		case $line in
		PASS*) result PASS "${line#PASS }" ;;
		*) result FAIL "${line#FAIL }" ;;
		esac
	done < <("$KFSC_ROOT/scripts/parse-results.sh" "$2" "$1")
}

step deps "$KFSC_ROOT/scripts/deps.sh"

# cargo_tests NAME LOG CMD...: a cargo test run whose tests count one by
# one; a run that fails without a failed test (or runs none) counts once.
cargo_tests() {
	local name=$1 log=$2 t0=$SECONDS rc cp cf
	shift 2
	"$@" >"$logs/$log" 2>&1
	rc=$?
	read -r cp cf < <(awk '/^test result:/ {p += $4; f += $6} END {print p+0, f+0}' "$logs/$log")
	pass=$((pass + cp)) fail=$((fail + cf))
	if [ $rc -eq 0 ] && [ "$cp" -gt 0 ]; then
		echo "PASS $name: $cp tests ($((SECONDS - t0))s)"
	else
		echo "FAIL $name: $cp passed, $cf failed, exit $rc (out/logs/$log)"
		[ "$cf" -gt 0 ] || fail=$((fail + 1))
	fi
}

# Host tests of the pure Rust.
cargo_tests "cargo test" cargo-test.log "$KFSC_ROOT/scripts/host-test.sh"

step kernel bash -c "'$KFSC_ROOT/scripts/kernel.sh' >'$logs/kdir'"
KDIR=$(tail -n 1 "$logs/kdir")
export KDIR
step module "$KFSC_ROOT/scripts/module.sh"
# QEMU with qemu/patches (before lint, which checkpatches the series in
# its source tree).
step qemu bash -c "'$KFSC_ROOT/scripts/qemu.sh' >'$logs/qemu-dir'"
QEMU=$(tail -n 1 "$logs/qemu-dir")
export QEMU
step lint "$KFSC_ROOT/scripts/lint.sh"
step selftests bash -c "'$KFSC_ROOT/scripts/selftests.sh' >'$logs/tests-dir'"
TESTS=$(tail -n 1 "$logs/tests-dir")
export TESTS
step bochs bash -c "'$KFSC_ROOT/scripts/bochs.sh' >'$logs/bochs-prefix'"
BOCHS=$(tail -n 1 "$logs/bochs-prefix")
export BOCHS
# The userspace crate.
cargo_tests "vmm cargo test" vmm-test.log "$KFSC_ROOT/scripts/vmm.sh" test
step vmm-lint "$KFSC_ROOT/scripts/vmm.sh" lint
step vmm-build bash -c "'$KFSC_ROOT/scripts/vmm.sh' build >'$logs/vmm-dir'"
VMM=$(tail -n 1 "$logs/vmm-dir")
export VMM
INITRD=$KFSC_ROOT/out/initramfs.cpio.gz
export INITRD
step initramfs "$KFSC_ROOT/scripts/initramfs.sh" "$INITRD"

# The debug kernel: the same patched tree with the kernel's checkers
# (kernel/debug.fragment, built with Clang for KASAN), its own module build
# and initramfs, built before the boots so that its boots share the lanes.
step kernel-debug bash -c "KFSC_KERNEL_VARIANT=debug '$KFSC_ROOT/scripts/kernel.sh' >'$logs/kdir-debug'"
KDIR_DEBUG=$(tail -n 1 "$logs/kdir-debug")
step module-debug env KDIR="$KDIR_DEBUG" "$KFSC_ROOT/scripts/module.sh"
INITRD_DEBUG=$KFSC_ROOT/out/initramfs-debug.cpio.gz
# The real guest runs on the main kernel only: no QEMU in this one.
step initramfs-debug env KDIR="$KDIR_DEBUG" QEMU= "$KFSC_ROOT/scripts/initramfs.sh" "$INITRD_DEBUG"

# The boots. Bochs runs one emulated machine on one host thread, so two
# lanes of boots run side by side on the 2 cores, balanced by their
# measured times (Documentation/platform.rst); each boot's exit status
# and time land in out/logs/boot-<suite>.rc, and the results are counted in
# a fixed order once both lanes are done.
#   run_boot SUITE MODEL [KERNEL ARGS...] (KFSC_BOCHS_CPUS from the caller)
run_boot() {
	local suite=$1 model=$2
	shift 2
	record_boot "$suite" "$KFSC_ROOT/scripts/bochs-run.sh" "$suite" "$model" "$logs" "$@"
}
# debug_boot SUITE MODEL [KERNEL ARGS...]: a boot of the debug kernel.
debug_boot() {
	KDIR=$KDIR_DEBUG INITRD=$INITRD_DEBUG run_boot "$@"
}
# record_boot SUITE CMD...: run a boot, its output to boot-SUITE.log, its
# exit status and time to boot-SUITE.rc.
record_boot() {
	local suite=$1 t0=$SECONDS
	shift
	"$@" >"$logs/boot-$suite.log" 2>&1
	echo "$? $((SECONDS - t0))" >"$logs/boot-$suite.rc"
}
# boots SUITE...: count each boot of a finished lane: the run itself (a
# harness failure shows its log), then every result in its serial log.
boots() {
	local suite rc secs
	for suite in "$@"; do
		read -r rc secs <"$logs/boot-$suite.rc" 2>/dev/null || rc=missing
		if [ "$rc" = 0 ]; then
			result PASS "step: boot-$suite (${secs}s)"
		else
			result FAIL "step: boot-$suite (exit $rc), log out/logs/boot-$suite.log:"
			tail -n 30 "$logs/boot-$suite.log" | sed 's/^/    /'
		fi
		boot "$suite" "$logs/$suite.serial"
	done
}

lane_a() {
	# Bochs sapphire_rapids, 5-level host: the RSM side of erratum 2 is
	# proven by the boot itself, erratum 1 and 3 by the errata test inside.
	run_boot bochs-spr sapphire_rapids
	run_boot bochs-spr-4level sapphire_rapids no5lvl
	# Bochs tigerlake: VMX without the control, the intercept backend.
	run_boot bochs-tgl tigerlake
	# kmemleak=on: module life cycles with VMs, the unload race, fault
	# injection on the module's paths, then a leak scan.
	run_boot bochs-spr-lifecycle sapphire_rapids kmemleak=on
	record_boot qemu-amd "$KFSC_ROOT/scripts/qemu-run.sh" qemu-amd "$logs"
	# The debug kernel: the forcing selftests on vmx-virt, a short fault
	# injection, a leak scan; the stress test and the unload race with 3
	# CPUs.
	debug_boot bochs-spr-debug sapphire_rapids kmemleak=on
	KFSC_BOCHS_CPUS=3 debug_boot bochs-spr-smp-debug sapphire_rapids
	# The debug kernel: the forcing selftests on vmx-intercept.
	debug_boot bochs-tgl-debug tigerlake
}
lane_b() {
	# A Linux guest under QEMU with forced bits, on both backends (the
	# guest's own mitigation code writes the MSR; QMP changes; migration to
	# a file).
	run_boot bochs-spr-qemu sapphire_rapids
	run_boot bochs-tgl-qemu tigerlake
	# Bochs ryzen: AMD SVM with IA32_SPEC_CTRL and V_SPEC_CTRL.
	run_boot bochs-ryzen ryzen
	# 5 CPUs: configuration changes while vCPUs run (contract item 4), from
	# one host thread and from two at once; erratum 8.
	KFSC_BOCHS_CPUS=5 run_boot bochs-spr-smp sapphire_rapids
	KFSC_BOCHS_CPUS=3 run_boot bochs-ryzen-smp ryzen
}
lane_a &
lane=$!
lane_b
wait "$lane"
boots bochs-spr bochs-spr-4level bochs-tgl bochs-spr-lifecycle qemu-amd bochs-spr-debug \
	bochs-spr-smp-debug bochs-tgl-debug bochs-spr-qemu bochs-tgl-qemu bochs-ryzen bochs-spr-smp \
	bochs-ryzen-smp
finish
