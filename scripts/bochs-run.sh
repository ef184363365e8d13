#!/usr/bin/env bash
# Boot the test kernel in Bochs and run one guest suite.
#   KDIR=... INITRD=... bochs-run.sh <suite> <cpu model> <log dir> [kernel args...]
# Writes <log dir>/<suite>.serial (the guest console), .ktap (the suite's
# results, from the second serial port: scripts/guest/lib.sh) and .bochs
# (Bochs' own log); exits non-zero when the emulator timed out or the guest
# never reached the end of its suite (parse-results.sh judges the rest).
source "$(dirname "$0")/lib.sh"
suite=$1 model=$2 logdir=$3
shift 3
KDIR=${KDIR:?} INITRD=${INITRD:?}
BOCHS=${BOCHS:?bochs install prefix}
timeout_s=${KFSC_BOCHS_TIMEOUT:-900}
cpus=${KFSC_BOCHS_CPUS:-1}
bios=$KFSC_CACHE/dl/bochsbios/root/usr/share/bochs/BIOS-bochs-latest
vgabios=$KFSC_CACHE/dl/vgabios/root/usr/share/vgabios/vgabios.bin
[ -f "$bios" ] && [ -f "$vgabios" ] || die "no BIOS images; run scripts/deps.sh"

mkdir -p "$logdir"
name=$suite${KFSC_RUN_TAG:+-$KFSC_RUN_TAG}
serial=$logdir/$name.serial
ktap=$logdir/$name.ktap
rm -f "$serial" "$ktap"
work=$(mktemp -d)
watch_pid=
# (set -e holds in the trap too: a kill that finds nothing must not fail the run)
trap '[ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/iso/isolinux"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$work/iso/isolinux/"
cp "$KDIR/arch/x86/boot/bzImage" "$work/iso/bzImage"
cp "$INITRD" "$work/iso/initrd.gz"
# clearcpuid=amx_tile: the model offers AMX without XFD (Documentation/platform.rst).
# kfsc.seed: for the randomized tests, new each boot (Bochs is deterministic,
# the guest's own randomness would repeat); KFSC_SEED replays a run.
# KFSC_SEED may be given as the tests print it (0x...): the guest takes hex
# digits only.
seed=${KFSC_SEED:-$(od -An -N6 -tx8 /dev/urandom | tr -d ' ')}
seed=${seed#0[xX]}
[[ $seed =~ ^[0-9a-fA-F]+$ ]] || die "KFSC_SEED '$KFSC_SEED' is not a hex number"
seed=${seed,,}
cat >"$work/iso/isolinux/isolinux.cfg" <<EOT
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /bzImage
  INITRD /initrd.gz
  APPEND console=ttyS0,115200 loglevel=5 clearcpuid=amx_tile panic=-1 kfsc.suite=$suite kfsc.seed=$seed kfsc.ktap=/dev/ttyS1 $*
EOT
xorriso -as mkisofs -quiet -o "$work/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
	-no-emul-boot -boot-load-size 4 -boot-info-table "$work/iso" 2>/dev/null ||
	die "xorriso failed"
cat >"$work/bochsrc" <<EOT
display_library: nogui
romimage: file=$bios
vgaromimage: file=$vgabios
cpu: model=$model, count=$cpus, ips=50000000, reset_on_triple_fault=0
megs: 1024
pci: enabled=1, chipset=i440fx
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
boot: cdrom
clock: sync=none, time0=946684800
com1: enabled=1, mode=file, dev=$serial
com2: enabled=1, mode=file, dev=$ktap
panic: action=fatal
error: action=report
info: action=ignore
debug: action=ignore
log: $logdir/$name.bochs
mouse: enabled=0
EOT
# KFSC_BOCHS_E9=1: bytes the guest writes to port 0xE9 go to <name>.stdout
# (scripts/guest/e9out.c; the pool suite's way out of the machine).
[ "${KFSC_BOCHS_E9:-0}" = 1 ] && echo "port_e9_hack: enabled=1" >>"$work/bochsrc"
log "bochs: $model, suite $suite ($*), serial log $serial"
start=$(date +%s)
# Bochs exits 1 on a guest power-off with panic: action=fatal; the serial
# log decides (parse-results.sh).
# <suite>.wall: the host's wall-clock second at which each result reached
# the results channel (polled once a second), and when the suite began: the
# emulated uptime in the .ktap says where the guest spent its time, this
# says where make check spends its budget (scripts/boots.list).
wall=$logdir/$name.wall
: >"$wall"
(
	seen=0
	while sleep 1; do
		[ -f "$ktap" ] || continue
		# Whole lines only: the guest may be half way through one.
		lines=$(head -n "$(wc -l <"$ktap")" "$ktap" | grep -cE '^(not )?ok |^1\.\.') || lines=0
		[ "$lines" -gt "$seen" ] || continue
		head -n "$(wc -l <"$ktap")" "$ktap" | grep -E '^(not )?ok |^1\.\.' | sed -n "$((seen + 1)),${lines}p" |
			sed "s/^/$(( $(date +%s) - start ))s /" >>"$wall"
		seen=$lines
	done
) &
watch_pid=$!
rc=0
timeout "$timeout_s" "$BOCHS/bin/bochs" -q -f "$work/bochsrc" >"$logdir/$name.stdout" 2>&1 </dev/null || rc=$?
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true # 143: it was killed
watch_pid=
echo "$(( $(date +%s) - start ))s bochs exit $rc" >>"$wall"
log "bochs: exit $rc after $(( $(date +%s) - start ))s"
# The harness's watchdog: say what stalled, from the console: the test that
# was running, whether the guest's own per-test watchdog (scripts/guest/
# lib.sh: stacks and debug views) had fired, and how long the console had
# been silent: a machine that stopped (erratum 4) is silent for minutes.
if [ $rc -eq 124 ]; then
	running=$(tr -d '\r' <"$serial" 2>/dev/null | awk '
		/^KFSC-BEGIN / { t = substr($0, 12) }
		/KFSC-RESULT (PASS|FAIL) / { t = "" }
		END { print t }')
	silent=$(( $(date +%s) - $(stat -c %Y "$serial" 2>/dev/null || date +%s) ))
	if [ -z "$running" ]; then
		what="outside any test (booting, or between tests)"
	elif grep -q "^KFSC-TIMEOUT $running" "$serial"; then
		what="in test '$running', after the guest's watchdog fired (stacks above)"
	else
		what="in test '$running' (the guest's watchdog had not fired)"
	fi
	last=$(tr -d '\r' <"$serial" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c1-160)
	echo "KFSC-HOST-TIMEOUT bochs after ${timeout_s}s, $what; no console output for the last ${silent}s, the last: '$last'" >>"$serial"
	log "bochs: timed out $what"
	exit 1
fi
# Bochs' own status says nothing (1 on every power-off): the guest must have
# reached the end of its suite.
grep -q '^KFSC-DONE' <(tr -d '\r' <"$serial" 2>/dev/null) || {
	log "bochs: the guest never reached the end of its suite"
	exit 1
}
exit 0
