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

# Bochs sapphire_rapids, 5-level host: the RSM side of erratum 2 is proven by
# the boot itself, erratum 1 and 3 by the errata test inside.
step boot-bochs-spr "$KFSC_ROOT/scripts/bochs-run.sh" bochs-spr sapphire_rapids "$logs"
boot bochs-spr "$logs/bochs-spr.serial"
step boot-bochs-spr-4level "$KFSC_ROOT/scripts/bochs-run.sh" bochs-spr-4level sapphire_rapids "$logs" no5lvl
boot bochs-spr-4level "$logs/bochs-spr-4level.serial"
# Bochs tigerlake: VMX without the control, the intercept backend.
step boot-bochs-tgl "$KFSC_ROOT/scripts/bochs-run.sh" bochs-tgl tigerlake "$logs"
boot bochs-tgl "$logs/bochs-tgl.serial"
# A Linux guest under QEMU with forced bits, on both backends (the guest's
# own mitigation code writes the MSR; QMP changes; migration to a file).
step boot-bochs-spr-qemu "$KFSC_ROOT/scripts/bochs-run.sh" bochs-spr-qemu sapphire_rapids "$logs"
boot bochs-spr-qemu "$logs/bochs-spr-qemu.serial"
step boot-bochs-tgl-qemu "$KFSC_ROOT/scripts/bochs-run.sh" bochs-tgl-qemu tigerlake "$logs"
boot bochs-tgl-qemu "$logs/bochs-tgl-qemu.serial"
# 3 CPUs: configuration changes while vCPUs run (contract item 4).
step boot-bochs-spr-smp env KFSC_BOCHS_CPUS=3 "$KFSC_ROOT/scripts/bochs-run.sh" bochs-spr-smp sapphire_rapids "$logs"
boot bochs-spr-smp "$logs/bochs-spr-smp.serial"
# kmemleak=on: module life cycles with VMs, then a leak scan.
step boot-bochs-spr-lifecycle "$KFSC_ROOT/scripts/bochs-run.sh" bochs-spr-lifecycle sapphire_rapids "$logs" kmemleak=on
boot bochs-spr-lifecycle "$logs/bochs-spr-lifecycle.serial"
step boot-qemu-amd "$KFSC_ROOT/scripts/qemu-run.sh" qemu-amd "$logs"
boot qemu-amd "$logs/qemu-amd.serial"

# The debug kernel: the same patched tree with the kernel's checkers
# (kernel/debug.fragment), its own module build and initramfs.
step kernel-debug bash -c "KFSC_KERNEL_VARIANT=debug '$KFSC_ROOT/scripts/kernel.sh' >'$logs/kdir-debug'"
KDIR=$(tail -n 1 "$logs/kdir-debug")
export KDIR
step module-debug "$KFSC_ROOT/scripts/module.sh"
INITRD=$KFSC_ROOT/out/initramfs-debug.cpio.gz
# The real guest runs on the main kernel only: no QEMU in this one.
step initramfs-debug env QEMU= "$KFSC_ROOT/scripts/initramfs.sh" "$INITRD"
step boot-bochs-spr-debug "$KFSC_ROOT/scripts/bochs-run.sh" bochs-spr-debug sapphire_rapids "$logs" kmemleak=on
boot bochs-spr-debug "$logs/bochs-spr-debug.serial"
step boot-bochs-tgl-debug "$KFSC_ROOT/scripts/bochs-run.sh" bochs-tgl-debug tigerlake "$logs"
boot bochs-tgl-debug "$logs/bochs-tgl-debug.serial"
step boot-bochs-spr-smp-debug env KFSC_BOCHS_CPUS=3 "$KFSC_ROOT/scripts/bochs-run.sh" bochs-spr-smp-debug sapphire_rapids "$logs"
boot bochs-spr-smp-debug "$logs/bochs-spr-smp-debug.serial"
finish
