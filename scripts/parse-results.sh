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
bad=$(grep -E 'WARNING:|BUG:|Oops|Call Trace:|Kernel panic|general protection fault|UBSAN:|kmemleak: [0-9]+ new suspected' "$log" | head -n 3)
if [ -n "$bad" ]; then
	emit FAIL "no kernel warnings: $(echo "$bad" | head -n 1)"
else
	emit PASS "no kernel warnings"
fi
exit $fail
