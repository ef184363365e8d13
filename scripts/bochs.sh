#!/usr/bin/env bash
# Build Bochs 3.0 from Debian's source tarball, with scripts/bochs/*.patch
# (fixes of the emulator errata this project meets, each documented in its
# patch and in Documentation/platform.rst), headless (nogui), no plugins.
# Cached under a key of (version, patches, configure flags). Prints the
# install prefix on stdout.
source "$(dirname "$0")/lib.sh"

flags=(--with-nogui --enable-x86-64 --enable-vmx=2 --enable-svm --enable-smp
	--enable-cpu-level=6 --enable-all-optimizations --enable-avx
	--enable-evex --enable-amx --enable-cet --enable-pci
	--enable-protection-keys --enable-uintr --enable-repeat-speedups
	--enable-fpu --enable-a20-pin --enable-cdrom --disable-plugins)
tarball=$KFSC_CACHE/dl/bochs-src/bochs_$KFSC_BOCHS_VER.orig.tar.xz
[ -f "$tarball" ] || die "no Bochs source; run scripts/deps.sh"
# KFSC_BOCHS_UNFIXED="0001 0003" leaves those errata fixes out, to show that
# the errata checks fail without them (scripts/errata-proof.sh).
patches=()
for p in "$KFSC_ROOT"/scripts/bochs/*.patch; do
	case " ${KFSC_BOCHS_UNFIXED:-} " in
	*" $(basename "$p" | cut -c1-4) "*) ;;
	*) patches+=("$p") ;;
	esac
done
key=$( (echo "$KFSC_BOCHS_VER ${flags[*]}"; cat "${patches[@]}" /dev/null) |
	sha256sum | cut -c1-16)
prefix=$KFSC_CACHE/bochs/$key

if [ ! -x "$prefix/bin/bochs" ]; then
	log "bochs: building $KFSC_BOCHS_VER ($key)"
	work=$KFSC_CACHE/bochs/build-$key
	rm -rf "$work" && mkdir -p "$work"
	tar -xJf "$tarball" -C "$work" --strip-components=1
	for p in "${patches[@]}"; do
		patch -d "$work" -p1 -s <"$p" || die "bochs: $p does not apply"
	done
	(cd "$work" && ./configure --prefix="$prefix" "${flags[@]}" >configure.log 2>&1 &&
		make -j"$(nproc)" >make.log 2>&1) ||
		die "bochs build failed, see $work/*.log"
	# A run killed during the install leaves no prefix that looks complete.
	kfsc_install_atomic "$prefix" make -C "$work" install >"$work/install.log" 2>&1 ||
		die "bochs install failed, see $work/install.log"
	rm -rf "$work"
fi
# make check's Bochs and errata-proof's one per left-out fix, and spares.
kfsc_prune 12 "$prefix" "$KFSC_CACHE"/bochs/[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]
models=$("$prefix/bin/bochs" -help cpu 2>&1 || true)
for model in sapphire_rapids tigerlake corei7_icelake_u arrow_lake ryzen; do
	grep -qw $model <<<"$models" || die "bochs at $prefix has no $model model"
done
echo "$prefix"
