#!/usr/bin/env bash
# Judge one boot from its logs: the suite's results from its KTAP channel
# (<log>.ktap beside the serial log: scripts/guest/lib.sh), the kernel's
# health from the console (<log>.serial).
#   parse-results.sh <serial log> <label>
# Prints "PASS|FAIL <label>: <test>" per test of the suite, and
# "CHECK-PASS|CHECK-FAIL <label>: <what>" per check of the boot itself
# (bookkeeping, not counted as a test). Exits non-zero if anything failed.
# The channel must hold "KTAP version 1", a plan "1..N", exactly N results
# numbered 1..N in order, and the end marker "# KFSC-END"; anything else
# there (a line no test wrote whole) fails the suite.
log=$1 label=$2
ktap=${log%.serial}.ktap
fail=0
emit() {
	echo "$1 $label: $2"
	case $1 in *PASS) ;; *) fail=1 ;; esac
}

if [ ! -s "$log" ]; then
	emit CHECK-FAIL "boot (no serial output in $log)"
	exit 1
fi
console=$(tr -d '\r' <"$log")
grep -q '^KFSC-BOOT' <<<"$console" && emit CHECK-PASS "boot" || emit CHECK-FAIL "boot (never reached the suite)"

# The KTAP channel. awk prints the results and, last, one "verdict" line.
if [ ! -f "$ktap" ]; then
	emit CHECK-FAIL "results channel (no $ktap)"
else
	verdicts=$(tr -d '\r' <"$ktap" | awk '
		function bad(why) { if (!err) err = why }
		NR == 1 { if ($0 != "KTAP version 1") bad("line 1 is not \"KTAP version 1\": " $0); next }
		NR == 2 && /^1\.\.[0-9]+$/ { plan = substr($0, 4) + 0; planned = 1; next }
		NR == 2 { bad("no plan on line 2: " $0); next }
		/^# KFSC-END/ { if (ended) bad("two end markers"); ended = 1; endline = $0; next }
		ended { bad("after the end marker: " $0); next }
		/^(not )?ok [0-9]+ / {
			ok = ($1 == "ok")
			num = ok ? $2 : $3
			name = $0
			sub(/^(not )?ok [0-9]+ /, "", name)
			n++
			if (num != n) bad("result " num " where " n " was due")
			print (ok ? "PASS " : "FAIL ") name
			next
		}
		/^#/ { next }
		{ bad("unparsable line " NR ": " $0) }
		END {
			if (!planned) bad("no plan")
			else if (n != plan) bad("plan 1.." plan ", " n " results")
			if (!ended) bad("no end marker: the suite never finished")
			else if (endline ~ /aborted/) bad("the suite aborted: " endline)
			print "VERDICT " (err ? err : "ok")
		}')
	awk_rc=$?
	[ $awk_rc -eq 0 ] || emit CHECK-FAIL "results channel (parser exit $awk_rc)"
	while IFS= read -r line; do
		case $line in
		"PASS "*) emit PASS "${line#PASS }" ;;
		"FAIL "*) emit FAIL "${line#FAIL }" ;;
		"VERDICT ok") emit CHECK-PASS "results channel: plan, results and end marker agree" ;;
		"VERDICT "*) emit CHECK-FAIL "results channel: ${line#VERDICT }" ;;
		*) emit CHECK-FAIL "results channel: parser printed '$line'" ;;
		esac
	done <<<"$verdicts"
	grep -q '^VERDICT ' <<<"$verdicts" || emit CHECK-FAIL "results channel: no verdict"
fi
grep -q 'KFSC-HOST-TIMEOUT' <<<"$console" && emit CHECK-FAIL "emulator timed out: $(grep -m1 'KFSC-HOST-TIMEOUT' <<<"$console")"
grep -q '^KFSC-ERROR' <<<"$console" && emit CHECK-FAIL "$(grep -m1 '^KFSC-ERROR' <<<"$console")"
# Lockdep and the atomic-sleep check report as WARNING:/BUG:, debug objects
# as ODEBUG:, a Rust panic (overflow checks) as "panicked at". Between the
# KFSC-FAULTS-BEGIN/END markers a suite puts around fault injection, the
# stack dump of an allocation-failure report (warn_alloc: "vmalloc error",
# "page allocation failure") is expected and left out; anything else counts.
bad=$(awk '
	/KFSC-FAULTS-BEGIN/ { faults = 1 }
	/KFSC-FAULTS-END/ { faults = 0 }
	faults && /vmalloc error:|page allocation failure:/ { expect_trace = 1; next }
	expect_trace && /Call Trace:/ { expect_trace = 0; next }
	{ print }' <<<"$console" |
	grep -E 'WARNING:|BUG:|Oops|Call Trace:|Kernel panic|general protection fault|UBSAN:|ODEBUG:|panicked at|kmemleak: [0-9]+ new suspected' | head -n 3)
if [ -n "$bad" ]; then
	emit CHECK-FAIL "no kernel warnings: $(head -n 1 <<<"$bad")"
else
	emit CHECK-PASS "no kernel warnings"
fi
exit $fail
