#!/usr/bin/env bash
# The Intel models' mitigation facts are written in three places: as code
# in scripts/bochs/0010 (what Bochs reports), in scripts/guest/cpu-facts.list
# (what the boots check the booted CPU against) and in the table of
# Documentation/platform.rst (for readers). The boots prove the table; this
# checks that the patch's IA32_ARCH_CAPABILITIES values and the
# documentation's row of each model say what the table says. Prints one
# PASS/FAIL line per model.
# Reads the tree only: no lib.sh, whose cache lock would wait for a running
# boot.
KFSC_ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "FAIL cpu facts: $*"; exit 1; }
list=$KFSC_ROOT/scripts/guest/cpu-facts.list
rst=$KFSC_ROOT/Documentation/platform.rst
patch=$(echo "$KFSC_ROOT"/scripts/bochs/0010-*.patch)
[ -f "$patch" ] || die "no scripts/bochs/0010-*.patch"
rc=0
while read -r model arch edx spec; do
	why=
	# The model's cpudb file (corei7_icelake_u is corei7_icelake-u.cc):
	# its get_arch_capabilities() returns BX_CONST64(value).
	file=cpu/cpudb/intel/$(sed 's/_u$/-u/' <<<"$model").cc
	got=$(awk -v f="+++ b/$file" '
		/^\+\+\+ / { in_file = ($0 == f) }
		in_file && /get_arch_capabilities\(void\) const$/ { want = 1 }
		in_file && want && /return BX_CONST64\(/ {
			sub(/.*BX_CONST64\(/, ""); sub(/\).*/, ""); print; exit
		}' "$patch")
	if [ -z "$got" ]; then
		why="no get_arch_capabilities() in $file of $(basename "$patch")"
	elif [ $((got)) -ne $((arch)) ]; then
		why="the patch's $file returns $got, cpu-facts.list says $arch"
	fi
	# The documentation's row: the model's name first, then the three values.
	row=$(grep -E "^$model " "$rst" | head -n 1)
	for v in "$arch" "$edx" "$spec"; do
		grep -qw -- "$v" <<<"$row" ||
			why="${why:+$why; }platform.rst's row of $model lacks $v"
	done
	if [ -z "$why" ]; then
		echo "PASS cpu facts of $model agree: patch 0010, cpu-facts.list, platform.rst"
	else
		echo "FAIL cpu facts of $model agree: $why"
		rc=1
	fi
done < <(grep -v '^#' "$list" | grep -v '^[[:space:]]*$' | tail -n +2)
exit $rc
