# A real guest under a real VMM: the test kernel, booted by the project's
# QEMU (qemu/patches) with -accel kvm and forced IA32_SPEC_CTRL bits, inside
# the emulated CPU. The guest's own kernel writes IA32_SPEC_CTRL (eIBRS at
# boot, SSBD per task: scripts/guest/l2/). The host drives QEMU over QMP and
# samples the module's debug view while the guest runs. Sourced by a suite
# after lib.sh; realguest_run BACKEND runs it all.
Q=${KFSC_QEMU:-/qemu}
BHI_DIS_S=0x400
SSBD=0x4
# F, FNAME: the bit the scenario forces, and its name: BHI_DIS_S, unless the
# suite sets REALGUEST_FORCED and REALGUEST_FORCED_NAME before sourcing this
# file, for a host that cannot take BHI_DIS_S (a Tiger Lake has no BHI_CTRL:
# scripts/guest/cpu-facts.list). The guest must never set F itself.
F=${REALGUEST_FORCED:-$BHI_DIS_S}
FNAME=${REALGUEST_FORCED_NAME:-BHI_DIS_S}
FHEX=$(printf 0x%x "$F")
# The guest must not choose BHI_DIS_S itself (spectre_bhi=off: it believes
# it relies on software BHB clearing), so that the bit is the host's alone.
# The guest kernel must honour per-task SSBD requests (prctl), so it must
# not be told that it is unaffected by Speculative Store Bypass: KVM says
# so twice (ARCH_CAPABILITIES.SSB_NO, and CPUID 0x80000008 EBX AMD_SSB_NO)
# whenever its host is unaffected. The emulated Intel hosts are affected
# since scripts/bochs/0010 (their parts are), so KVM sets neither; the two
# options keep it so on a Bochs whose models still claim SSB_NO.
L2_APPEND="console=ttyS0 quiet panic=-1 spectre_bhi=off"
L2_CPU="host,ssb-no=off,amd-no-ssb=off"

ok() { result PASS "$*"; }
nok() { result FAIL "$*"; }
check() { # check NAME COND-EXIT-STATUS
	if [ "$2" -eq 0 ]; then ok "$1"; else nok "$1"; fi
}

# qemu_start TAG ACCEL-OPTS [QEMU ARGS...]: QEMU in the background, its
# console in /tmp/$TAG.log, QMP on the pipes /tmp/$TAG.qmp.{in,out} (fds 3
# and 4 once qmp_open ran). Sets QPID.
qemu_start() {
	tag=$1 accel=$2
	shift 2
	rm -f /tmp/"$tag".log /tmp/"$tag".qmp.in /tmp/"$tag".qmp.out
	mkfifo /tmp/"$tag".qmp.in /tmp/"$tag".qmp.out
	# rtc=on: microvm leaves the RTC out under KVM, and the guest kernel
	# then spends a second of its boot waiting for one.
	"$Q"/qemu-system-x86_64 -M microvm,rtc=on -accel "kvm$accel" -cpu "$L2_CPU" \
		-smp 1 -m 96 -display none -no-reboot -L "$Q" -bios "$Q"/qboot.rom \
		-kernel "$Q"/bzImage -initrd "$Q"/l2.gz -append "$L2_APPEND" \
		-serial file:/tmp/"$tag".log \
		-chardev pipe,id=qmp,path=/tmp/"$tag".qmp -mon chardev=qmp,mode=control \
		"$@" </dev/null >/tmp/"$tag".stderr 2>&1 &
	QPID=$!
}

# qmp_open TAG: connect to QEMU's QMP and leave command mode on.
qmp_open() {
	exec 3</tmp/"$1".qmp.out 4>/tmp/"$1".qmp.in
	read -r -t 120 greeting <&3 || return 1
	qmp '{"execute":"qmp_capabilities"}' >/dev/null
}

# qmp JSON: send a command, print its reply (events are skipped).
qmp() {
	echo "$1" >&4
	while read -r -t 300 line <&3; do
		case $line in
		*'"return"'* | *'"error"'*) echo "$line"; return 0 ;;
		esac
	done
	echo "no QMP reply to $1"
	return 1
}

qmp_quit() {
	qmp '{"execute":"quit"}' >/dev/null
	exec 3<&- 4>&-
	wait "$QPID" 2>/dev/null
}

# json_num KEY: the number after "KEY": in stdin's first match.
json_num() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" | head -n1; }

# wait_log TAG PATTERN SECONDS: wait for a console line.
wait_log() {
	i=0
	while [ $i -lt "$3" ]; do
		grep -q "$2" /tmp/"$1".log 2>/dev/null && return 0
		kill -0 "$QPID" 2>/dev/null || return 1
		sleep 1
		i=$((i + 1))
	done
	return 1
}

# stream_spec_ctrl FILE: IA32_SPEC_CTRL as QEMU's migration stream carries
# it (what the source's KVM_GET_MSRS returned): vmstate subsection
# "cpu/spec_ctrl", i.e. its name, a be32 version, the be64 value.
stream_spec_ctrl() {
	off=$(strings -t d -n 13 "$1" | sed -n 's/^ *\([0-9]*\) cpu\/spec_ctrl$/\1/p' | head -n1)
	[ -n "$off" ] || { echo none; return; }
	v=0x$(od -An -tx1 -j $((off + 13 + 4)) -N 8 "$1" | tr -d ' \n')
	printf '0x%x\n' $((v))
}

dv() { cat /sys/kernel/debug/kvm/*/vcpu0/force_spec_ctrl; }
field() { sed -n "s/^$1: //p"; }

# dv_read: one read of the debug view into shell variables (DV_guest,
# DV_effective, DV_mask, DV_value, DV_fresh, DV_backend, DV_vm_mask,
# DV_vm_value, DV_entries, DV_hw_now), with no process:
# in the emulated CPU a fork and exec (a $(cat), a sed per field) cost far
# more than the read itself (1.4 s of wall-clock per sample in Bochs).
dv_read() {
	for dv_file in /sys/kernel/debug/kvm/*/vcpu0/force_spec_ctrl; do :; done
	DV_fresh=
	while IFS= read -r dv_line; do
		case $dv_line in
		"guest: "*) DV_guest=${dv_line#* } ;;
		"effective: "*) DV_effective=${dv_line#* } ;;
		"mask: "*) DV_mask=${dv_line#* } ;;
		"value: "*) DV_value=${dv_line#* } ;;
		"fresh: "*) DV_fresh=${dv_line#* } ;;
		"backend: "*) DV_backend=${dv_line#* } ;;
		"vm_mask: "*) DV_vm_mask=${dv_line#* } ;;
		"vm_value: "*) DV_vm_value=${dv_line#* } ;;
		"entries: "*) DV_entries=${dv_line#* } ;;
		"hw_now: "*) DV_hw_now=${dv_line#* } ;;
		esac
	done <"$dv_file"
}

# dv_read_fresh: dv_read of a record made after the read began. One older
# than the read (fresh: 0) is of an entry before it, e.g. before the last
# configuration change: read again, up to 10 times. Between tries, sleep:
# on one emulated CPU the vCPU thread enters the guest only when this shell
# gives up the CPU, and back-to-back reads (no process between them) can
# all come before its next entry. Fails if none was fresh.
dv_read_fresh() {
	for try in 1 2 3 4 5 6 7 8 9 10; do
		dv_read
		[ "$DV_fresh" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}

# sample N LABEL: N debug-view reads while the guest runs. Each record must
# be of a fresh entry and obey the invariant: the value loaded is the merge
# of the guest's view and the configuration in force. Counts what it saw in
# SAW_SSBD_ON/OFF (guest views with and without SSBD) and the union of the
# values loaded in EFF_OR, their intersection in EFF_AND.
sample() {
	n=$1 label=$2 bad=0 SAW_SSBD_ON=0 SAW_SSBD_OFF=0 EFF_OR=0 EFF_AND=-1 GUEST_OR=0
	ALL_GUEST_OR=${ALL_GUEST_OR:-0}
	i=0
	while [ $i -lt "$n" ]; do
		dv_read_fresh
		g=$DV_guest e=$DV_effective m=$DV_mask v=$DV_value
		if [ "$DV_fresh" != 1 ] || [ $(((g & ~m) | (v & m))) -ne $((e)) ]; then
			echo "bad record ($label): guest $g effective $e mask $m value $v fresh $DV_fresh"
			bad=$((bad + 1))
		fi
		[ $((g & SSBD)) -ne 0 ] && SAW_SSBD_ON=$((SAW_SSBD_ON + 1)) || SAW_SSBD_OFF=$((SAW_SSBD_OFF + 1))
		EFF_OR=$((EFF_OR | e)) EFF_AND=$((EFF_AND & e)) GUEST_OR=$((GUEST_OR | g))
		ALL_GUEST_OR=$((ALL_GUEST_OR | g))
		i=$((i + 1))
	done
	echo "sampled $n entries ($label): guest views with SSBD $SAW_SSBD_ON, without $SAW_SSBD_OFF;" \
		"loaded: OR $(printf 0x%x $EFF_OR) AND $(printf 0x%x $EFF_AND); guest views OR $(printf 0x%x $GUEST_OR)"
	return $bad
}

# guest_msr_check TAG: the guest's own RDMSRs (spec-task.c) never show a
# forced bit, show SSBD exactly in the task that asked for it, and are
# values the host saw as the guest's view.
guest_msr_check() {
	lines=$(grep '^L2-MSR' /tmp/"$1".log)
	[ -n "$lines" ] || { echo "no L2-MSR lines"; return 1; }
	bad=0
	echo "$lines" | sort | uniq -c | sed 's/^/  guest RDMSR: /'
	for w in $(echo "$lines" | sed 's/L2-MSR task=\([a-z]*\) \(0x[0-9a-f]*\)/\1:\2/'); do
		task=${w%%:*} val=${w#*:}
		[ $((val & F)) -eq 0 ] || bad=1
		if [ "$task" = ssbd ]; then
			[ $((val & SSBD)) -ne 0 ] || bad=1
		else
			[ $((val & SSBD)) -eq 0 ] || bad=1
		fi
		# The host's views are the guest's values: same bits outside SSBD.
		[ $(((val ^ ALL_GUEST_OR) & ~SSBD)) -eq 0 ] || bad=1
	done
	return $bad
}

# refused NAME ACCEL-OPTS PATTERN: QEMU must exit non-zero at start, and say
# PATTERN.
refused() {
	qemu_start bad "$2"
	wait "$QPID"
	rc=$?
	cat /tmp/bad.stderr
	grep -q "$3" /tmp/bad.stderr
	check "$1 (exit $rc)" $(($? || !rc))
}

# realguest_run BACKEND: the whole scenario on this CPU model.
realguest_run() {
	backend=$1
	load_kvm intel enable_apicv=0
	insmod_fsc

	# Refusals at start: nothing runs with a configuration KVM cannot apply.
	refused "QEMU refuses value outside mask" ",force-spec-ctrl-mask=0x4,force-spec-ctrl-value=0x400" \
		"has bits outside the mask"
	refused "QEMU refuses a bit the host cannot force on" \
		",force-spec-ctrl-mask=0x8000000000000000,force-spec-ctrl-value=0x8000000000000000" \
		"cannot force IA32_SPEC_CTRL bits 0x8000000000000000 on"

	# The guest, F forced on from its first instruction.
	qemu_start src ",force-spec-ctrl-mask=$F,force-spec-ctrl-value=$F"
	if ! qmp_open src || ! wait_log src L2-READY 400; then
		cat /tmp/src.stderr /tmp/src.log
		nok "real guest reaches userspace under QEMU (no L2-READY)"
		kill "$QPID"
		return 1
	fi
	ok "real guest reaches userspace under QEMU"
	grep '^L2-' /tmp/src.log
	grep -q "^L2-VULN spec_store_bypass: Mitigation: Speculative Store Bypass disabled via prctl" /tmp/src.log
	check "guest honours per-task SSBD (prctl)" $?

	supported=$(qmp '{"execute":"query-force-spec-ctrl"}' | json_num supported)
	echo "supported: $(printf 0x%x "$supported")"
	dv | grep -E '^(backend|supported|vm_mask|vm_value):'
	[ "$(dv | field backend)" = "$backend" ]
	check "backend is $backend" $?

	sample 24 "$FNAME forced on"
	check "every entry loads the merge ($FNAME forced on)" $?
	[ $((EFF_AND & F)) -ne 0 ] && [ $((GUEST_OR & F)) -eq 0 ]
	check "$FNAME always loaded, never in the guest's view" $?
	[ $SAW_SSBD_ON -gt 0 ] && [ $SAW_SSBD_OFF -gt 0 ] &&
		[ $((EFF_OR & SSBD)) -ne 0 ] && [ $((EFF_AND & SSBD)) -eq 0 ]
	check "the guest's SSBD flips reach the hardware" $?

	# Runtime change over QMP: SSBD forced off as well.
	r=$(qmp '{"execute":"set-force-spec-ctrl","arguments":{"mask":'$((F | SSBD))',"value":'$((F))'}}')
	echo "set-force-spec-ctrl mask $(printf 0x%x $((F | SSBD))) value $FHEX: $r"
	sample 16 "SSBD forced off"
	check "every entry loads the merge (SSBD forced off)" $?
	[ $((EFF_OR & SSBD)) -eq 0 ] && [ $SAW_SSBD_ON -gt 0 ] && [ $((EFF_AND & F)) -ne 0 ]
	check "QMP change mid-run: SSBD never loaded, the guest still sets it" $?

	# Invalid requests: error replies, nothing changes.
	r=$(qmp '{"execute":"set-force-spec-ctrl","arguments":{"mask":4,"value":1024}}')
	echo "invalid (value outside mask): $r"
	r2=$(qmp '{"execute":"set-force-spec-ctrl","arguments":{"mask":'$((F))',"value":'$((F))',"cpu-index":7}}')
	echo "invalid (no vCPU 7): $r2"
	q=$(qmp '{"execute":"query-force-spec-ctrl"}')
	echo "query: $q"
	case "$r$r2" in *'"error"'*'"error"'*) e=0 ;; *) e=1 ;; esac
	[ $e -eq 0 ] && [ "$(echo "$q" | json_num mask)" = $((F | SSBD)) ] &&
		[ "$(dv | field vm_mask)" = "$(printf 0x%x $((F | SSBD)))" ] && [ "$(dv | field vm_value)" = "$FHEX" ]
	check "invalid QMP requests are errors and change nothing" $?

	# A vCPU's own configuration, then back to the VM-wide one.
	r=$(qmp '{"execute":"set-force-spec-ctrl","arguments":{"mask":'$((F))',"value":0,"cpu-index":0}}')
	echo "vCPU 0 own ($FNAME forced off): $r"
	qmp '{"execute":"human-monitor-command","arguments":{"command-line":"info force-spec-ctrl"}}'
	sample 10 "vCPU 0: $FNAME forced off"
	s=$?
	[ $s -eq 0 ] && [ $((EFF_OR & F)) -eq 0 ] && [ "$(dv | field vcpu_override)" = "$FHEX 0x0" ]
	check "QMP vCPU configuration replaces the VM-wide one" $?
	r=$(qmp '{"execute":"clear-force-spec-ctrl","arguments":{"cpu-index":0}}')
	sample 10 "vCPU 0 cleared"
	s=$?
	[ $s -eq 0 ] && [ $((EFF_AND & F)) -ne 0 ] && [ $((EFF_OR & SSBD)) -eq 0 ] &&
		[ "$(dv | field vcpu_override)" = none ]
	check "QMP clear: vCPU 0 follows the VM-wide configuration again" $?

	# The guest's own RDMSRs (each task prints one a second): let both
	# tasks have printed one.
	wait_log src 'L2-MSR task=ssbd' 300 && wait_log src 'L2-MSR task=plain' 300
	qmp_quit
	guest_msr_check src
	check "guest RDMSR (/dev/cpu/0/msr) never shows a forced bit and agrees with the host" $?
	# Migration, from host to host with each host's own forcing, is the
	# pool run's (scripts/pool-run.sh, suites/pool-hop).

	# Without the module, QEMU says what is missing.
	rmmod kvm_force_spec_ctrl
	refused "QEMU refuses to start without the module, naming it" \
		",force-spec-ctrl-mask=$F,force-spec-ctrl-value=$F" \
		"kvm_force_spec_ctrl module loaded"
}
