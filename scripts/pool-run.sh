#!/usr/bin/env bash
# The pool run: one Linux guest (the test kernel under the project's QEMU)
# migrates across emulated hosts of different CPU generations, each its own
# Bochs machine booted in turn (scripts/guest/suites/pool-hop runs on each).
#   KDIR=... INITRD=... BOCHS=... VMM=... pool-run.sh <name> <log dir> <route>
# route: the pool's hosts in the order the guest visits them, as
# "host:bochs-model" words, e.g. "tgl:tigerlake spr:sapphire_rapids
# icl-u:corei7_icelake_u"; the guest's CPU model is the first host's. Each
# host forces what `kfsc-policy default` prints for that pool and model.
#
# Between two hosts the harness carries the migration stream: the source
# writes it to port 0xE9 (Bochs' stdout, scripts/guest/e9out.c), the
# destination finds it in its initramfs (a cpio appended to the test one:
# /pool/stream, with /pool/hop.env and the source's state in
# /pool/prev.env). Why not live, between two running Bochs machines over
# bxhub: it needs a NIC in Bochs and in both kernels, and two nested
# machines at once on 2 cores would double every hop's time
# (Documentation/platform.rst). Each hop's results are its own boot:
# <log dir>/pool-hop-<name>-<n>.{serial,ktap,wall}.
source "$(dirname "$0")/lib.sh"
name=$1 logdir=$2
shift 2
route=("$@")
[ ${#route[@]} -ge 2 ] || die "pool-run.sh: a route of at least two hosts"
KDIR=${KDIR:?} INITRD=${INITRD:?} BOCHS=${BOCHS:?} VMM=${VMM:?}
policy=$VMM/kfsc-policy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$logdir"

files=() hosts=()
for hop in "${route[@]}"; do
	h=${hop%%:*}
	hosts+=("$h")
	files+=("hosts/$h.json")
	[ -f "$KFSC_ROOT/vmm/pools/hosts/$h.json" ] || die "no host file vmm/pools/hosts/$h.json"
done
model_of=${hosts[0]}
table=$(cd "$KFSC_ROOT/vmm/pools" && "$policy" default --model-of "$model_of" "${files[@]}") ||
	die "kfsc-policy default failed"
echo "pool ${hosts[*]}, the guest's model is $model_of's:"
echo "$table" | sed 's/^/  /'
# The backend each host's module must pick: vmx-virt on the models to
# which Bochs gives "virtualize IA32_SPEC_CTRL" (MSR 0x492 bit 7: the
# bochs-spr and bochs-tgl suites check the flag), vmx-intercept elsewhere.
# pool-hop checks the module's choice against it. The only such table:
# cpu-facts.list has no column for it.
backend_of() {
	case $1 in
	sapphire_rapids | arrow_lake) echo vmx-virt ;;
	*) echo vmx-intercept ;;
	esac
}

rc=0
i=0
: >"$work/prev.env"
for hop in "${route[@]}"; do
	i=$((i + 1))
	h=${hop%%:*} model=${hop#*:}
	tag=$name-$i
	mask=$(echo "$table" | awk -v h="$h" '$1 == h { print $2 }')
	[ -n "$mask" ] || die "no decision for $h in the policy's table"
	root=$work/hop$i
	mkdir -p "$root/pool"
	cat >"$root/pool/hop.env" <<EOT
POOL_HOP=$i
POOL_HOPS=${#route[@]}
POOL_HOST=$h
POOL_MODEL_OF=$model_of
POOL_FILES="${files[*]}"
POOL_BACKEND=$(backend_of "$model")
POOL_EXPECT_MASK=$mask
EOT
	if [ $i -gt 1 ]; then
		cp "$work/prev.env" "$root/pool/prev.env"
		mv "$work/stream" "$root/pool/stream"
	fi
	(cd "$root" && find pool | cpio -o -H newc --quiet | gzip -1) >"$work/extra.gz"
	cat "$INITRD" "$work/extra.gz" >"$work/initrd.gz"
	rm -rf "$root"
	log "pool $name: hop $i of ${#route[@]}, $h ($model), forcing $mask"
	hop_rc=0
	KFSC_RUN_TAG=$tag KFSC_BOCHS_E9=1 INITRD=$work/initrd.gz \
		"$KFSC_ROOT/scripts/bochs-run.sh" pool-hop "$model" "$logdir" || hop_rc=$?
	[ $hop_rc -eq 0 ] || rc=1
	[ $i -lt ${#route[@]} ] || break
	# The next hop's inputs: the state lines of the console, the stream
	# from Bochs' stdout (KFSC-E9-BEGIN <length> <name>, then the bytes).
	tr -d '\r' <"$logdir/pool-hop-$tag.serial" |
		sed -n "s/^POOL-STATE \([A-Z_0-9]*\)='\(.*\)'$/\1='\2'/p" >"$work/prev.env"
	out=$logdir/pool-hop-$tag.stdout
	at=$(grep -a -b -m1 -o 'KFSC-E9-BEGIN [0-9]* [^[:space:]]*' "$out" | head -n1) || at=
	if [ -z "$at" ] || ! grep -q '^PREV_VIEW=' "$work/prev.env"; then
		log "pool $name: hop $i handed nothing on; the route stops at $h"
		rc=1
		break
	fi
	off=${at%%:*} hdr=${at#*:}
	len=$(echo "$hdr" | cut -d' ' -f2)
	start=$((off + ${#hdr} + 1))
	tail -c +$((start + 1)) "$out" | head -c "$len" >"$work/stream"
	if [ "$(stat -c %s "$work/stream")" != "$len" ] ||
		! tail -c +$((start + len + 1)) "$out" | head -c 13 | grep -q 'KFSC-E9-END'; then
		log "pool $name: the stream out of hop $i is cut short ($(stat -c %s "$work/stream") of $len bytes)"
		rc=1
		break
	fi
	# The stream stays out of the log directory (30 MB a hop).
	head -c "$start" "$out" >"$out.head" && mv "$out.head" "$out"
	log "pool $name: $len bytes of migration stream from $h"
done
exit $rc
