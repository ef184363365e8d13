#!/usr/bin/env bash
# Judge one boot from its serial log. Prints a "PASS|FAIL <label>: <test>"
# line per test and exits non-zero if anything failed. A boot that did not
# reach the end of its suite, or a kernel warning/oops anywhere in the log,
# is a failure of its own.
#   parse-results.sh <serial log> <label>
log=$1 label=$2
fail=0
emit() { echo "$1 $label: $2"; [ "$1" = PASS ] || fail=1; }

if [ ! -s "$log" ]; then
	emit FAIL "boot (no serial output in $log)"
	exit 1
fi
grep -q '^KFSC-BOOT' "$log" && emit PASS "boot" || emit FAIL "boot (never reached the suite)"
while IFS= read -r line; do
	case $line in
	*"KFSC-RESULT PASS "*) emit PASS "${line#*KFSC-RESULT PASS }" ;;
	*"KFSC-RESULT FAIL "*) emit FAIL "${line#*KFSC-RESULT FAIL }" ;;
	esac
done < <(tr -d '\r' <"$log")
grep -q 'KFSC-HOST-TIMEOUT' "$log" && emit FAIL "emulator timed out"
grep -q '^KFSC-DONE' "$log" && emit PASS "suite ran to the end" || emit FAIL "suite ran to the end"
grep -q '^KFSC-ERROR' "$log" && emit FAIL "$(grep -m1 '^KFSC-ERROR' "$log")"
# Lockdep and the atomic-sleep check report as WARNING:/BUG:, debug objects
# as ODEBUG:, a Rust panic (overflow checks) as "panicked at". Between the
# KFSC-FAULTS-BEGIN/END markers a suite puts around fault injection, the
# stack dump of an allocation-failure report (warn_alloc: "vmalloc error",
# "page allocation failure") is expected and left out; anything else counts.
bad=$(tr -d '\r' <"$log" | awk '
	/KFSC-FAULTS-BEGIN/ { faults = 1 }
	/KFSC-FAULTS-END/ { faults = 0 }
	faults && /vmalloc error:|page allocation failure:/ { expect_trace = 1; next }
	expect_trace && /Call Trace:/ { expect_trace = 0; next }
	{ print }' |
	grep -E 'WARNING:|BUG:|Oops|Call Trace:|Kernel panic|general protection fault|UBSAN:|ODEBUG:|panicked at|kmemleak: [0-9]+ new suspected' | head -n 3)
if [ -n "$bad" ]; then
	emit FAIL "no kernel warnings: $(echo "$bad" | head -n 1)"
else
	emit PASS "no kernel warnings"
fi
exit $fail
