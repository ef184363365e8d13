# shellcheck shell=bash
# Common settings for the harness. Sourced, never run.
#
# Everything built or downloaded lives in $KFSC_CACHE, outside the repository,
# at a stable path: a kernel build directory that moves rebuilds from scratch.

set -euo pipefail

KFSC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KFSC_CACHE=${KFSC_CACHE:-/var/cache/kvm-force-spec-ctrl}
export KFSC_ROOT KFSC_CACHE

# Kernel, Bochs and QEMU sources, pinned: a different version changes the cache key.
KFSC_LINUX_PKG=linux-source-7.3
KFSC_BOCHS_VER=3.0+dfsg
KFSC_QEMU_VER=1:10.0.13+ds-0+deb13u1
KFSC_BINDGEN_VER=0.71.1

# Debian's LLVM 19: bindgen's libclang, and the debug kernel's toolchain
# (Kbuild's LLVM=<dir>/, scripts/kernel.sh).
KFSC_LLVM_DIR=/usr/lib/llvm-19
KFSC_LLVM=$KFSC_LLVM_DIR/bin/

# The toolchain of Documentation/platform.rst. rustup's ~/.cargo/bin must not be on PATH for
# kernel builds: its rustc has no rust-src and would be picked as RUSTC.
kfsc_kernel_env() {
	PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v '/\.cargo/bin' | paste -sd:)
	PATH="$KFSC_CACHE/cargo/bin:$PATH"
	export PATH
	export LIBCLANG_PATH=$KFSC_LLVM_DIR/lib
}

# Debian's rustc-web/cargo-web install as /usr/bin/rustc and /usr/bin/cargo;
# host tests and bindgen-cli use the same compiler as the kernel.
KFSC_CARGO=/usr/bin/cargo

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# kfsc_prepare OUTDIR: everything a boot needs (dependencies, kernel, module,
# selftests, Bochs, QEMU, initramfs in OUTDIR); exports KDIR, TESTS, BOCHS,
# QEMU, INITRD.
kfsc_prepare() {
	mkdir -p "$1"
	"$KFSC_ROOT/scripts/deps.sh"
	KDIR=$("$KFSC_ROOT/scripts/kernel.sh")
	export KDIR
	"$KFSC_ROOT/scripts/module.sh"
	TESTS=$("$KFSC_ROOT/scripts/selftests.sh")
	BOCHS=$("$KFSC_ROOT/scripts/bochs.sh")
	VMM=$("$KFSC_ROOT/scripts/vmm.sh" build)
	QEMU=$("$KFSC_ROOT/scripts/qemu.sh")
	INITRD=$1/initramfs.cpio.gz
	export TESTS BOCHS VMM QEMU INITRD
	"$KFSC_ROOT/scripts/initramfs.sh" "$INITRD"
}

# Source trees in the cache (kernel, QEMU) are git trees: the unpacked
# upstream/Debian source tagged "pristine", a patch series applied on top.
kfsc_git() { git -C "$1" -c user.name=kfsc -c user.email=kfsc@localhost "${@:2}"; }

# kfsc_git_init SRC MESSAGE: commit the freshly unpacked tree SRC, tag it.
kfsc_git_init() {
	kfsc_git "$1" init -q
	kfsc_git "$1" add -A -f  # Debian's .gitignore may ignore the top level
	kfsc_git "$1" commit -q -m "$2"
	kfsc_git "$1" tag pristine
}

# kfsc_install_atomic PREFIX CMD...: run CMD, an install into
# "$DESTDIR$PREFIX", with DESTDIR a temporary root beside PREFIX, then
# rename the result into place: a run killed before the rename leaves no
# PREFIX that looks complete, and the next run installs again.
# The selftests' sources as the cached objects see them: a copy in the
# kernel's build tree (DEST), at a path that does not depend on where the
# project is checked out. The objects' .d files name their sources by
# absolute path; naming the checkout would make every clone at another path
# (CI's, a developer's second one) fail with "No rule to make target
# <old checkout>/selftests/...". A file is copied only when its content
# changed, so its mtime (and make's view) follows content; files gone from
# the project go from the copy too.
#   kfsc_stage_selftests PROJECT_ROOT DEST
kfsc_stage_selftests() {
	local root=$1 dest=$2 f rel
	mkdir -p "$dest/selftests" "$dest/include/uapi/linux"
	for f in "$root"/selftests/*.c "$root"/selftests/*.h "$root"/selftests/kvm.mk \
		"$root"/include/uapi/linux/kvm_force_spec_ctrl.h; do
		rel=${f#"$root"/}
		cmp -s "$f" "$dest/$rel" || cp "$f" "$dest/$rel"
	done
	for f in "$dest"/selftests/*; do
		[ -e "$root/selftests/${f##*/}" ] || rm -f "$f"
	done
}

kfsc_install_atomic() {
	local prefix=$1 dest
	shift
	mkdir -p "$(dirname "$prefix")"
	# What a killed install left (the cache lock keeps installs apart).
	rm -rf "$(dirname "$prefix")"/.install-*
	dest=$(mktemp -d "$(dirname "$prefix")/.install-XXXXXX")
	if DESTDIR=$dest "$@" && [ -d "$dest$prefix" ]; then
		rm -rf "$prefix"
		mv "$dest$prefix" "$prefix"
		rm -rf "$dest"
	else
		rm -rf "$dest"
		return 1
	fi
}

# kfsc_prune KEEP CURRENT GLOB...: mark CURRENT (a cache entry: a build
# tree, an install prefix) as just used, and delete all but the KEEP most
# recently used of the entries matching GLOB, so that old keys do not
# accumulate in the cache.
kfsc_prune() {
	local keep=$1 current=$2 e
	shift 2
	touch "$current"
	ls -1dt "$@" 2>/dev/null | tail -n +"$((keep + 1))" | while read -r e; do
		[ "$e" = "$current" ] && continue
		log "cache: pruning $e"
		rm -rf "$e"
	done
}

# kfsc_series DIR: the patches of a series, in order, without its cover
# letter (0000-cover-letter.patch).
kfsc_series() {
	local p
	for p in "$1"/*.patch; do
		[ -e "$p" ] && [ "$(basename "$p")" != 0000-cover-letter.patch ] && echo "$p"
	done
	return 0
}

# kfsc_series_hash PATCH...: what identifies an applied series.
kfsc_series_hash() { cat "$@" /dev/null | sha256sum | cut -c1-16; }

# kfsc_apply_series SRC NAME PATCH...: make the tree SRC pristine + these
# patches, unless it is already. Resetting rewrites every file of the old
# series; the files the new series leaves as they were get their old mtimes
# back, so that a header included everywhere does not rebuild the whole tree
# for a change elsewhere.
kfsc_apply_series() {
	local src=$1 name=$2 phash state sum mtime f
	shift 2
	phash=$(kfsc_series_hash "$@")
	[ "$(cat "$src/.kfsc-patches" 2>/dev/null)" = "$phash" ] && return 0
	log "$name: applying $# patch(es)"
	rm -f "$src/.kfsc-patches"
	kfsc_git "$src" am --abort >/dev/null 2>&1 || true
	state=$(mktemp)
	kfsc_git "$src" diff --name-only pristine HEAD -- 2>/dev/null | while read -r f; do
		[ -f "$src/$f" ] && echo "$(sha1sum <"$src/$f" | cut -c1-40) $(stat -c %Y "$src/$f") $f"
	done >"$state"
	kfsc_git "$src" reset -q --hard pristine
	kfsc_git "$src" clean -qfd
	if [ $# -gt 0 ]; then
		kfsc_git "$src" am -q --whitespace=nowarn "$@" || die "$name: the patches do not apply to $src"
	fi
	while read -r sum mtime f; do
		[ -f "$src/$f" ] && [ "$(sha1sum <"$src/$f" | cut -c1-40)" = "$sum" ] &&
			touch -d "@$mtime" "$src/$f"
	done <"$state"
	rm -f "$state"
	echo "$phash" >"$src/.kfsc-patches"
}

# The modules a suite loads, from the kernel build $KDIR and this project.
kfsc_module_files() {
	echo "$KDIR"/virt/lib/irqbypass.ko "$KDIR"/arch/x86/kvm/kvm{,-intel,-amd}.ko \
		"$(kfsc_module_out)/rust/kvm_force_spec_ctrl.ko"
}

# Where the module is built for the kernel build $KDIR (Kbuild's MO=): one
# directory per kernel build, outside the source tree, so that the main and
# the debug kernel each have theirs. KFSC_MODULE_OUT overrides it.
kfsc_module_out() {
	echo "${KFSC_MODULE_OUT:-$KFSC_CACHE/module/$(basename "${KDIR:?}")}"
}

# One run at a time on a cache: two runs building the same kernel tree at
# once corrupt it (seen: "mv: cannot stat include/config/.tmp_kernel.release").
# The first script of a run takes the lock and holds it until it and every
# child that inherited the descriptor exit; nested scripts inherit it
# (KFSC_LOCKED). A second run waits, and says for whom.
kfsc_lock() {
	[ -n "${KFSC_LOCKED:-}" ] && return 0
	mkdir -p "$KFSC_CACHE"
	exec 9>>"$KFSC_CACHE/.lock"
	if ! flock -n 9; then
		log "waiting for the run holding $KFSC_CACHE/.lock: $(cat "$KFSC_CACHE/.lock.owner" 2>/dev/null)"
		flock 9
	fi
	echo "pid $$, $(basename "$0"), since $(date +%T)" >"$KFSC_CACHE/.lock.owner"
	export KFSC_LOCKED=1
}
kfsc_lock
