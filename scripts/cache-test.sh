#!/usr/bin/env bash
# Tests of the build cache's rules, fast enough for every make check. Prints
# "PASS <test>" or "FAIL <test>: why" per test; exits non-zero on a failure.
#   KDIR=<kernel build dir> cache-test.sh
# - A selftest is rebuilt when only a header it includes changes (the .d
#   files of selftests/kvm.mk), in a copy of the sources.
# - A checkout at another path reuses the cached objects (their .d files
#   name the staged copy: kfsc_stage_selftests).
# - A cached install killed half way is redone (kfsc_install_atomic, as
#   scripts/bochs.sh installs Bochs).
source "$(dirname "$0")/lib.sh"
KDIR=${KDIR:?KDIR must name the kernel build directory}
src=$(readlink -f "$KDIR/kfsc-src")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
ok() { echo "PASS $1"; }
nok() { echo "FAIL $1"; rc=1; }

# 1. A header-only change rebuilds the selftests that include it.
mkdir -p "$tmp/root"
cp -r "$KFSC_ROOT/selftests" "$KFSC_ROOT/include" "$tmp/root/"
build() {
	make -C "$src/tools/testing/selftests/kvm" -f "$tmp/root/selftests/kvm.mk" \
		OUTPUT="$tmp/out" KHDR_INCLUDES="-isystem $KDIR/usr/include" \
		FSC_ROOT="$tmp/root" LDFLAGS=-static -j"$(nproc)" fsc >>"$tmp/build.log" 2>&1
}
bin=$tmp/out/fsc/force_spec_ctrl_cap_test
if build && [ -x "$bin" ]; then
	before=$(stat -c %Y "$bin")
	build # nothing changed: nothing to do
	again=$(stat -c %Y "$bin")
	sleep 1
	echo '/* a change of the header only */' >>"$tmp/root/selftests/force_spec_ctrl.h"
	build
	after=$(stat -c %Y "$bin")
	if [ "$before" != "$again" ]; then
		nok "cache: an unchanged selftest is not rebuilt (it was)"
	elif [ "$after" -le "$again" ]; then
		nok "cache: a selftest is rebuilt when only force_spec_ctrl.h changed (it was not)"
	else
		ok "cache: a selftest is rebuilt when only force_spec_ctrl.h changed, and only then"
	fi
else
	tail -n 20 "$tmp/build.log"
	nok "cache: the selftests build in a copy of the sources"
fi

# 2. A checkout at another path (CI's clone, a second clone) builds with the
# objects a first checkout left in the cache, and rebuilds nothing: the
# objects name their sources in the cache's staged copy, not in a checkout.
stage_build() { # project root
	kfsc_stage_selftests "$1" "$tmp/staged/src" &&
		make -C "$src/tools/testing/selftests/kvm" -f "$tmp/staged/src/selftests/kvm.mk" \
			OUTPUT="$tmp/staged" KHDR_INCLUDES="-isystem $KDIR/usr/include" \
			FSC_ROOT="$tmp/staged/src" LDFLAGS=-static -j"$(nproc)" fsc >>"$tmp/build.log" 2>&1
}
mkdir -p "$tmp/a" "$tmp/b"
cp -r "$KFSC_ROOT/selftests" "$KFSC_ROOT/include" "$tmp/a/"
bin=$tmp/staged/fsc/force_spec_ctrl_cap_test
if stage_build "$tmp/a" && [ -x "$bin" ]; then
	before=$(stat -c %Y "$bin")
	sleep 1
	mv "$tmp/a/selftests" "$tmp/a/include" "$tmp/b/" # the first checkout is gone
	touch "$tmp"/b/selftests/* # a fresh clone: every file new
	if ! stage_build "$tmp/b"; then
		tail -n 5 "$tmp/build.log"
		nok "cache: a checkout at another path builds with the cached objects (it failed)"
	elif [ "$(stat -c %Y "$bin")" != "$before" ]; then
		nok "cache: a checkout at another path rebuilds nothing (it rebuilt)"
	else
		ok "cache: a checkout at another path builds with the cached objects, rebuilding nothing"
	fi
else
	tail -n 20 "$tmp/build.log"
	nok "cache: the selftests build from a staged copy"
fi

# 3. An install killed half way leaves nothing that looks complete, and the
# next run installs again.
prefix=$tmp/cache/prefix
slow_install() { # writes bin/tool, then would write the rest
	mkdir -p "$DESTDIR$prefix/bin" && touch "$DESTDIR$prefix/bin/tool" && sleep 30 &&
		mkdir -p "$DESTDIR$prefix/share" && touch "$DESTDIR$prefix/share/data"
}
quick_install() {
	mkdir -p "$DESTDIR$prefix/bin" "$DESTDIR$prefix/share" &&
		touch "$DESTDIR$prefix/bin/tool" "$DESTDIR$prefix/share/data"
}
(kfsc_install_atomic "$prefix" slow_install) &
pid=$!
for _ in $(seq 50); do
	ls "$tmp"/cache/.install-*/"$prefix"/bin/tool >/dev/null 2>&1 && break
	sleep 0.1
done
# Killed as a crash or a lost machine would: no chance to clean up. Its
# sleep finishes alone, and nothing of the install runs after it.
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null || true
if [ -e "$prefix/bin/tool" ]; then
	nok "cache: an install killed half way leaves no prefix (it left one)"
else
	kfsc_install_atomic "$prefix" quick_install
	if [ -e "$prefix/bin/tool" ] && [ -e "$prefix/share/data" ]; then
		ok "cache: an install killed half way leaves no prefix; the next run installs it whole"
	else
		nok "cache: the install after a killed one is whole"
	fi
fi
exit $rc
