#!/usr/bin/env bash
# make demo: build what is needed, then the pool run of make check
# (scripts/boots.list's pool route, scripts/pool-run.sh): a Linux guest
# under the project's QEMU boots on an emulated Tiger Lake and migrates to
# a Sapphire Rapids and an Ice Lake-U, each host forcing what the pool's
# default policy decides. Prints the journey as one table: per hop, the
# host's CPU, the backend, what the policy forces and why, the guest's view
# of IA32_SPEC_CTRL and the value loaded at VM entry.
source "$(dirname "$0")/lib.sh"
logs=$KFSC_ROOT/out/demo
kfsc_prepare "$logs"
entry=$(grep -v '^#' "$KFSC_ROOT/scripts/boots.list" | awk '$2 == "pool"' | head -n 1)
[ -n "$entry" ] || die "no pool route in scripts/boots.list"
read -r route _ _ _ _ hops <<<"$entry"
# shellcheck disable=SC2086 # the route's hops, word-split
"$KFSC_ROOT/scripts/pool-run.sh" "$route" "$logs" $hops || true

echo
echo "=== make demo: one Linux guest (the test kernel under QEMU + KVM) across three emulated CPU generations ==="
printf '%-4s %-7s %-17s %-14s %-10s %-26s %s\n' hop host "CPU (Bochs)" backend forced \
	"guest's view (task/ssbd)" "loaded at VM entry"
i=0 said=0 rc=0
for hop in $hops; do
	i=$((i + 1))
	serial=$logs/pool-hop-$route-$i.serial
	row=$(tr -d '\r' <"$serial" 2>/dev/null | sed -n 's/^POOL-ROW //p' | head -n 1)
	if [ -z "$row" ]; then
		printf '%-4s %-7s %-17s (the hop did not get this far: %s)\n' "$i" "${hop%%:*}" "${hop#*:}" "$serial"
		rc=1
		continue
	fi
	IFS='|' read -r _ host backend forced view loaded why v2 <<<"$row"
	printf '%-4s %-7s %-17s %-14s %-10s %-26s %s\n' "$i" "$host" "${hop#*:}" "$backend" "$forced" \
		"$view" "$loaded"
	[ "$why" = - ] || echo "     why $forced on $host: $why"
	case $forced in *BHI_DIS_S*)
		[ $said = 1 ] || case $v2 in *"BHI: "*)
			echo "     on $host the guest reports \"BHI: ${v2##*BHI: }\" while BHI_DIS_S is in force under it"
			said=1 ;;
		esac ;;
	esac
done
echo "==="
i=0
for _ in $hops; do
	i=$((i + 1))
	"$KFSC_ROOT/scripts/parse-results.sh" "$logs/pool-hop-$route-$i.serial" "pool-hop-$route-$i" >/dev/null ||
		{ echo "hop $i failed; serial log: $logs/pool-hop-$route-$i.serial"; rc=1; }
done
[ $rc -eq 0 ] || die "demo failed"
