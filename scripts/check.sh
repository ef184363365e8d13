#!/usr/bin/env bash
# make check: everything, from dependencies to emulator boots. The last line
# counts tests only: "N passed, N failed" (every KTAP result of every suite,
# and every cargo test); the build steps and each boot's own checks (it
# booted, its results channel held its plan and end marker, no kernel
# warning) are counted apart, on the line above it. Any failure of either
# fails the run. Logs go to out/logs.
source "$(dirname "$0")/lib.sh"
set +e
logs=$KFSC_ROOT/out/logs
rm -rf "$logs" && mkdir -p "$logs"
pass=0 fail=0 cpass=0 cfail=0
result() { # result PASS|FAIL name: a test
	echo "$1 $2"
	if [ "$1" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}
check() { # check PASS|FAIL name: a build step or a check of a boot
	echo "$1 $2"
	if [ "$1" = PASS ]; then cpass=$((cpass + 1)); else cfail=$((cfail + 1)); fi
}
# step NAME CMD...: a build step; its failure ends the run (later steps need it).
step() {
	local name=$1 t0=$SECONDS
	shift
	if "$@" >"$logs/$name.log" 2>&1; then
		check PASS "step: $name ($((SECONDS - t0))s)"
	else
		check FAIL "step: $name ($((SECONDS - t0))s), log out/logs/$name.log:"
		tail -n 30 "$logs/$name.log" | sed 's/^/    /'
		finish
	fi
}
finish() {
	echo "check: total $SECONDS s"
	echo "steps and boot checks: $cpass passed, $cfail failed"
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ] && [ "$cfail" -eq 0 ]
	exit $?
}
# boot LABEL LOG: count the tests and checks parsed from one boot's logs; a
# parser that fails without saying what failed is a failed check itself.
boot() {
	local line out rc failed=0
	out=$("$KFSC_ROOT/scripts/parse-results.sh" "$2" "$1")
	rc=$?
	while IFS= read -r line; do
		case $line in
		"PASS "*) result PASS "${line#PASS }" ;;
		"FAIL "*) result FAIL "${line#FAIL }"; failed=1 ;;
		"CHECK-PASS "*) check PASS "${line#CHECK-PASS }" ;;
		"CHECK-FAIL "*) check FAIL "${line#CHECK-FAIL }"; failed=1 ;;
		"") ;;
		*) check FAIL "$1: parser printed '$line'"; failed=1 ;;
		esac
	done <<<"$out"
	[ $rc -eq 0 ] || [ $failed -eq 1 ] || check FAIL "$1: parse-results.sh exit $rc without a failure"
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
		check PASS "$name: $cp tests ($((SECONDS - t0))s)"
	else
		check FAIL "$name: $cp passed, $cf failed, exit $rc (out/logs/$log)"
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
# relay FN CMD...: each "PASS x" or "FAIL x" line CMD prints, through FN
# (result: a test; check: bookkeeping); the number of them in $relayed.
relay() {
	local fn=$1 line
	shift
	relayed=0
	while IFS= read -r line; do
		case $line in
		"PASS "*) "$fn" PASS "${line#PASS }"; relayed=$((relayed + 1)) ;;
		"FAIL "*) "$fn" FAIL "${line#FAIL }"; relayed=$((relayed + 1)) ;;
		esac
	done < <("$@")
}
# The cache's rules, as tests: a header-only change rebuilds, a killed
# install is redone.
relay result bash -c "'$KFSC_ROOT/scripts/cache-test.sh' 2>'$logs/cache-test.log'"
[ "$relayed" -eq 3 ] || result FAIL "cache tests: $relayed of 3 reported (out/logs/cache-test.log)"
step bochs bash -c "'$KFSC_ROOT/scripts/bochs.sh' >'$logs/bochs-prefix'"
BOCHS=$(tail -n 1 "$logs/bochs-prefix")
export BOCHS
# The Intel models' mitigation facts agree in patch 0010, the table the
# boots check (scripts/guest/cpu-facts.list) and platform.rst.
relay check bash -c "'$KFSC_ROOT/scripts/cpu-facts-check.sh' 2>&1"
[ "$relayed" -gt 0 ] || check FAIL "cpu facts: scripts/cpu-facts-check.sh reported nothing"
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

# The boots, one list (scripts/boots.list): suite, emulator model, CPUs,
# kernel, the seconds the boot last took (for the lanes), kernel arguments.
# Bochs runs one emulated machine on one host thread, so two lanes of boots
# run side by side on the 2 cores, balanced from those times (longest first, each to
# the lane with less work); each boot's exit status and time land in
# out/logs/boot-<suite>.rc, and the results are counted in the list's order
# once both lanes are done.
boot_list() { cat "$KFSC_ROOT/scripts/boots.list"; }
# boot_entries: the list without comments, one boot per line.
boot_entries() { boot_list | grep -v '^#' | grep -v '^[[:space:]]*$'; }

# run_entry SUITE MODEL CPUS KERNEL SECS [ARGS...]: one boot, its output to
# boot-SUITE.log, its exit status and time to boot-SUITE.rc.
run_entry() {
	local suite=$1 model=$2 cpus=$3 kernel=$4 t0=$SECONDS
	shift 5
	if [ "$model" = qemu ]; then
		"$KFSC_ROOT/scripts/qemu-run.sh" "$suite" "$logs"
	elif [ "$model" = pool ]; then
		"$KFSC_ROOT/scripts/pool-run.sh" "$suite" "$logs" "$@"
	elif [ "$kernel" = debug ]; then
		KDIR=$KDIR_DEBUG INITRD=$INITRD_DEBUG KFSC_BOCHS_CPUS=$cpus \
			"$KFSC_ROOT/scripts/bochs-run.sh" "$suite" "$model" "$logs" "$@"
	else
		KFSC_BOCHS_CPUS=$cpus "$KFSC_ROOT/scripts/bochs-run.sh" "$suite" "$model" "$logs" "$@"
	fi >"$logs/boot-$suite.log" 2>&1
	echo "$? $((SECONDS - t0))" >"$logs/boot-$suite.rc"
}

# Every suite is booted by make check, or is one of the other targets' own
# (make bench, soak): a suite dropped from the list fails the run.
for f in "$KFSC_ROOT"/scripts/guest/suites/*; do
	s=$(basename "$f")
	case $s in bench | bench-kicks | soak) continue ;; esac
	# pool-hop: every hop of a pool route (model "pool", pool-run.sh).
	boot_entries | awk -v s="$s" '$1 == s || (s == "pool-hop" && $2 == "pool") { found = 1 }
		END { exit !found }' ||
		check FAIL "suite $s is in no boot of scripts/boots.list"
done

# Two lanes: longest boot first, each to the lane with less work so far.
lane_a=() lane_b=()
work_a=0 work_b=0
while read -r suite model cpus kernel secs args; do
	if [ "$work_a" -le "$work_b" ]; then
		lane_a+=("$suite") work_a=$((work_a + secs))
	else
		lane_b+=("$suite") work_b=$((work_b + secs))
	fi
done < <(boot_entries | sort -k5,5nr)
echo "boot lanes: A (${work_a}s) ${lane_a[*]}; B (${work_b}s) ${lane_b[*]}"
run_lane() {
	local suite entry
	for suite in "$@"; do
		entry=$(boot_entries | awk -v s="$suite" '$1 == s')
		# shellcheck disable=SC2086 # the entry's fields, word-split
		run_entry $entry
	done
}
run_lane "${lane_a[@]}" &
lane=$!
run_lane "${lane_b[@]}"
wait "$lane"
# Count every boot of the list, in its order: the run itself (a harness
# failure shows its log), then every result and check of its logs.
while read -r suite model _ _ _ args; do
	read -r rc secs <"$logs/boot-$suite.rc" 2>/dev/null || rc=missing
	if [ "$rc" = 0 ]; then
		check PASS "step: boot-$suite (${secs}s)"
	else
		check FAIL "step: boot-$suite (exit $rc), log out/logs/boot-$suite.log:"
		tail -n 30 "$logs/boot-$suite.log" | sed 's/^/    /'
	fi
	if [ "$model" = pool ]; then
		# Every hop of the route counts, booted or not.
		i=0
		for _ in $args; do
			i=$((i + 1))
			boot "pool-hop-$suite-$i" "$logs/pool-hop-$suite-$i.serial"
		done
	else
		boot "$suite" "$logs/$suite.serial"
	fi
done < <(boot_entries)
finish
