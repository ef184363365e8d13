#!/usr/bin/env bash
# make bench: boots Bochs sapphire_rapids (vmx-virt, vmx-intercept),
# tigerlake (vmx-intercept) and ryzen (svm-vspec, svm-intercept) with one CPU
# each, and sapphire_rapids with 3 CPUs for the kicks, runs the benchmark
# programs, prints four tables. Figures are guest-measured TSC cycles (Bochs' TSC counts
# emulated work), VM exits from KVM's stats and IPIs from /proc/interrupts.
# Not a test: it fails only if a benchmark could not run.
source "$(dirname "$0")/lib.sh"
logs=$KFSC_ROOT/out/bench
kfsc_prepare "$logs"
rm -f "$logs"/bench*.serial
for run in bench:sapphire_rapids:1 bench:tigerlake:1 bench:ryzen:1 bench-kicks:sapphire_rapids:3; do
	IFS=: read -r suite model cpus <<<"$run"
	KFSC_BOCHS_CPUS=$cpus KFSC_RUN_TAG=$model \
		"$KFSC_ROOT/scripts/bochs-run.sh" "$suite" "$model" "$logs" "kfsc.label=$model" || true
	serial=$logs/$suite-$model.serial
	"$KFSC_ROOT/scripts/parse-results.sh" "$serial" "$suite-$model" >/dev/null ||
		die "benchmark failed on $model; serial log: $serial"
done
# lines TAG: the key=value lines of that tag, each as one list of shell
# assignments to b_<key> (values hold no spaces), for eval.
lines() {
	cat "$logs"/bench-*.serial | tr -d '\r' | grep "^$1 " | sed "s/^$1 //; s/^/b_/; s/ / b_/g"
}
echo
echo "Guest WRMSR of IA32_SPEC_CTRL (10^4 writes; forcing: nothing, SSBD forced on, SSBD forced off):"
printf '%-16s %-14s %-9s %16s %18s\n' "CPU (Bochs)" backend forcing "exits/10^4 WRMSR" "TSC cycles/WRMSR"
lines KFSC-BENCH | while read -r kv; do
	eval "$kv"
	printf '%-16s %-14s %-9s %16s %18s\n' "$b_label" "$b_backend" "$b_forcing" "$b_exits" "$b_cycles_per_wrmsr"
done
echo
# overhead_rows TAG SUFFIX: the rows of a round-trip table (fields
# cycles_per_SUFFIX, {rdmsr,wrmsr,vmcs}_per_SUFFIX), each with its cycle
# overhead over the last "unloaded" row of the same guest before it. The
# access columns are what a real CPU charges far more for than Bochs' TSC
# shows (counted by the emulator, scripts/bochs/0009): the host's RDMSR and
# WRMSR of IA32_SPEC_CTRL and VMREAD/VMWRITE of its VMCS mask and shadow.
overhead_rows() {
	lines "$1" | while read -r kv; do
		b_guest=na
		eval "$kv"
		local c=b_cycles_per_$2 r=b_rdmsr_per_$2 w=b_wrmsr_per_$2 v=b_vmcs_per_$2
		[ "$b_mode" = unloaded ] && eval "base_$b_guest=${!c}"
		local bv=base_$b_guest
		over=$(awk -v c="${!c}" -v b="${!bv:-0}" \
			'BEGIN { if (b > 0) printf "%+.1f%%", 100 * (c - b) / b; else print "-" }')
		printf '%-16s %-12s %-7s %-14s %12s %8s %8s %8s %9s\n' "$b_label" "$b_mode" "$b_guest" \
			"$b_backend" "${!c}" "${!r}" "${!w}" "${!v}" "$over"
	done
}
hdr() {
	printf '%-16s %-12s %-7s %-14s %12s %8s %8s %8s %9s\n' "CPU (Bochs)" module guest backend \
		"TSC cycles" RDMSR WRMSR VMCS overhead
}
echo "VM-exit round trip (guest CPUID, 2*10^4 exits), per exit; guest: never writes IA32_SPEC_CTRL"
echo "(silent) or set it before the loop (writes); RDMSR/WRMSR: the host's of IA32_SPEC_CTRL,"
echo "VMCS: its VMREAD/VMWRITE of the mask and shadow fields:"
hdr
overhead_rows KFSC-BENCH-EXIT exit
echo
echo "Nested VM-exit round trip (L2 CPUID handled by L1, 2*10^3 exits), per L2 exit:"
hdr
overhead_rows KFSC-BENCH-NESTED l2_exit
echo
echo "Kicks per VM-wide update (2 vCPUs spinning in the guest, vmx-virt):"
printf '%-8s %-8s %16s %18s\n' vCPUs updates "IPIs/update" "VM exits/update"
lines KFSC-BENCH-KICKS | while read -r kv; do
	eval "$kv"
	printf '%-8s %-8s %16s %18s\n' "$b_vcpus" "$b_updates" "$b_ipis_per_update" "$b_exits_per_update"
done
