#!/usr/bin/env bash
# make bench: the backend comparison. Boots Bochs sapphire_rapids (vmx-virt
# and vmx-intercept) and tigerlake (vmx-intercept), runs the benchmark
# program in each, prints one table. Figures are guest-measured TSC cycles
# (Bochs' TSC counts emulated instructions) and VM exits from KVM's stats.
source "$(dirname "$0")/lib.sh"
logs=$KFSC_ROOT/out/bench
kfsc_prepare "$logs"
for model in sapphire_rapids tigerlake; do
	KFSC_RUN_TAG=$model "$KFSC_ROOT/scripts/bochs-run.sh" bench "$model" "$logs" "kfsc.label=$model"
	"$KFSC_ROOT/scripts/parse-results.sh" "$logs/bench-$model.serial" "bench-$model" >/dev/null ||
		die "benchmark failed on $model; serial log: $logs/bench-$model.serial"
done
echo
printf '%-16s %-14s %-8s %14s %18s\n' "CPU (Bochs)" backend forcing "exits/10^4 WRMSR" "TSC cycles/WRMSR"
cat "$logs"/bench-*.serial | tr -d '\r' | grep '^KFSC-BENCH' |
	sed 's/^KFSC-BENCH //' | while read -r kv; do
		eval "$(echo "$kv" | tr ' ' '\n' | sed 's/^/b_/')"
		printf '%-16s %-14s %-8s %14s %18s\n' "$b_label" "$b_backend" "$b_forcing" "$b_exits" "$b_cycles_per_wrmsr"
	done
