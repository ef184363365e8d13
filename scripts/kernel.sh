#!/usr/bin/env bash
# Build the test kernel: linux-source-7.3 + kernel/patches/*.patch + the
# config fragment, out of tree, in the cache.
#
#   source tree  $KFSC_CACHE/linux/src-$VERSION      (git: pristine + patches)
#   build tree   $KFSC_CACHE/linux/build-$KEY         KEY = hash(version, fragments)
#
# The main test kernel adds kernel/main.fragment (fault injection).
#
# KFSC_KERNEL_VARIANT=debug adds kernel/debug.fragment (lockdep, KASAN,
# UBSAN, fault injection, ...) and builds with Clang (LLVM=1: a Rust kernel
# takes KASAN only from Clang): a second build tree of the same patched
# source. The build tree's kfsc-make-flags says how to build against it
# (scripts/module.sh).
#
# A change of patches only resets the patched files and re-applies the series:
# files the patches do not touch keep their mtimes, so the rebuild is
# incremental. A change of the fragment gets a new build tree.
# Prints the build tree's path on stdout.
source "$(dirname "$0")/lib.sh"
kfsc_kernel_env

deb=$(ls "$KFSC_CACHE"/dl/$KFSC_LINUX_PKG/*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || die "no $KFSC_LINUX_PKG package downloaded; run scripts/deps.sh"
version=$(dpkg-deb -f "$deb" Version)
src=$KFSC_CACHE/linux/src-$version
frags=("$KFSC_ROOT/kernel/config.fragment")
toolchain=()
case ${KFSC_KERNEL_VARIANT:-} in
"") frags+=("$KFSC_ROOT/kernel/main.fragment") ;;
debug)
	frags+=("$KFSC_ROOT/kernel/debug.fragment")
	toolchain=(LLVM="$KFSC_LLVM")
	;;
*) die "unknown KFSC_KERNEL_VARIANT '$KFSC_KERNEL_VARIANT'" ;;
esac
key=$( (echo "$version" "${toolchain[@]}"; cat "${frags[@]}") | sha256sum | cut -c1-16)
build=$KFSC_CACHE/linux/build-$key
# The series as sent to the list; its cover letter is not a change.
mapfile -t patches < <(kfsc_series "$KFSC_ROOT/kernel/patches")

if ! kfsc_git "$src" rev-parse -q --verify refs/tags/pristine >/dev/null 2>&1; then
	log "kernel: unpacking $KFSC_LINUX_PKG $version"
	rm -rf "$src" && mkdir -p "$src"
	tar -xJf "$KFSC_CACHE/dl/$KFSC_LINUX_PKG/root/usr/src/$KFSC_LINUX_PKG.tar.xz" \
		-C "$src" --strip-components=1
	kfsc_git_init "$src" "$KFSC_LINUX_PKG $version"
fi
kfsc_apply_series "$src" kernel "${patches[@]}"

kmake() { make -C "$src" O="$build" -j"$(nproc)" "${toolchain[@]}" $KFSC_KMAKE_FLAGS "$@"; }
KFSC_KMAKE_FLAGS=${KFSC_KMAKE_FLAGS:-}

# The fragments' options missing from the build tree's .config.
missing_options() {
	cat "${frags[@]}" | grep -E '^CONFIG_' | while read -r line; do
		grep -qxF "$line" "$build/.config" 2>/dev/null || echo "$line"
	done
}
# Configure a new tree, and again a tree whose .config lost options: a make
# run without the Rust toolchain in PATH silently drops CONFIG_RUST (and
# what depends on it), and the next build would not bring it back.
if [ "$(cat "$build/.kfsc-fragment" 2>/dev/null)" != "$key" ] || [ -n "$(missing_options)" ]; then
	log "kernel: configuring $build"
	mkdir -p "$build"
	kmake tinyconfig >/dev/null
	"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "${frags[@]}" >/dev/null
	kmake olddefconfig >/dev/null
	missing=$(missing_options)
	[ -z "$missing" ] || die "config options dropped by olddefconfig:"$'\n'"$missing"
	echo "$key" >"$build/.kfsc-fragment"
fi
echo "${toolchain[@]}" >"$build/kfsc-make-flags"

log "kernel: building in $build"
kmake bzImage modules >"$build/kfsc-build.log" 2>&1 ||
	{ tail -n 40 "$build/kfsc-build.log" >&2; die "kernel build failed (log: $build/kfsc-build.log)"; }
kmake headers >/dev/null 2>&1 || die "make headers failed"
ln -sfn "$src" "$build/kfsc-src"
# The main and the debug tree, and one spare (a fragment being tried).
kfsc_prune 3 "$build" "$KFSC_CACHE"/linux/build-*
log "kernel: ready"
echo "$build"
