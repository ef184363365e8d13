#!/usr/bin/env bash
# Boot the test kernel in QEMU (TCG, AMD EPYC with SVM) through virtme-ng and
# run one guest suite from the host's filesystem (shared read-only over 9p).
#   KDIR=... TESTS=... qemu-run.sh <suite> <log dir>
source "$(dirname "$0")/lib.sh"
suite=$1 logdir=$2
KDIR=${KDIR:?} TESTS=${TESTS:?}
timeout_s=${KFSC_QEMU_TIMEOUT:-600}
mkdir -p "$logdir"
serial=$logdir/$suite.serial
ktap=$logdir/$suite.ktap
rm -f "$serial" "$ktap"
# The guest sees the host's root over 9p, but virtme-ng puts tmpfs over
# /var/cache (and more): stage modules and tests next to the logs.
stage=$logdir/$suite.stage
rm -rf "$stage" && mkdir -p "$stage/modules" "$stage/tests" "$stage/results"
: >"$stage/results/ktap"
cp $(kfsc_module_files) "$stage/modules/"
for c in "$KFSC_ROOT"/selftests/*.c; do
	cp "$TESTS/$(basename "$c" .c)" "$stage/tests/" || die "no selftest binary for $c"
done

export PATH="$KFSC_CACHE/venv/bin:$PATH"
log "qemu: suite $suite, log $serial"
start=$(date +%s)
rc=0
# The guest's console is the command's output.
timeout "$timeout_s" vng --run "$KDIR" --disable-kvm --cpus 2 --memory 1G \
	--qemu-opts="-cpu EPYC" --append "loglevel=5" --verbose \
	--rwdir "$stage/results" \
	--exec "echo KFSC-BOOT suite=$suite kernel=\$(uname -r); KFSC_KTAP=$stage/results/ktap KFSC_TESTS=$stage/tests KFSC_MODULES=$stage/modules sh $KFSC_ROOT/scripts/guest/suites/$suite 2>&1; echo \"# KFSC-END exit=\$?\" >>$stage/results/ktap; echo KFSC-DONE" \
	</dev/null >"$serial" 2>&1 || rc=$?
log "qemu: exit $rc after $(( $(date +%s) - start ))s"
cp "$stage/results/ktap" "$ktap"
if [ $rc -eq 124 ]; then
	echo "KFSC-HOST-TIMEOUT qemu after ${timeout_s}s" >>"$serial"
	exit 1
fi
# virtme-ng's own status says nothing here (255 even for --exec true): the
# guest must have reached the end of its suite (parse-results.sh judges the
# rest).
grep -q '^KFSC-DONE' <(tr -d '\r' <"$serial") || {
	log "qemu: the guest never reached the end of its suite"
	exit 1
}
exit 0
