#!/usr/bin/env bash
# Install everything the build and the emulator runs need, on a fresh Debian
# bookworm machine. Idempotent: a second run checks and returns in seconds.
#
# Sources: bookworm (+ -security for rustc-web 1.96 and libclang-19,
# + -backports for QEMU 10) through a project-local apt configuration;
# trixie for downloads only (linux-source-7.3, Bochs 3.0 source, BIOS images);
# crates.io for bindgen-cli; PyPI for virtme-ng.
source "$(dirname "$0")/lib.sh"
source "$KFSC_ROOT/scripts/apt-local.sh"

apt_pkgs=(
	# kernel build
	build-essential flex bison libelf-dev libssl-dev bc kmod cpio dwarves file
	python3 python3-venv perl git xz-utils rsync
	# Rust for Linux, the versions of Documentation/platform.rst
	rustc-web rust-web-src libstd-rust-web-dev rustfmt-web rust-web-clippy
	cargo-web libclang-19-dev
	# the debug kernel: Clang, for KASAN with Rust (kernel/debug.fragment)
	clang-19 lld-19 llvm-19
	# initramfs, boot media
	busybox-static isolinux syslinux-common xorriso
	# Bochs from source (nogui, no plugins)
	g++ make
	# QEMU from source (scripts/qemu.sh): meson and pycotap come from
	# bookworm-backports, QEMU 10.0 needs meson >= 1.5
	ninja-build libglib2.0-dev libfdt-dev dpkg-dev
	# virtme-ng
	udev
)
bpo_pkgs=(qemu-system-x86 meson python3-pycotap)

missing=()
for p in "${apt_pkgs[@]}" "${bpo_pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing+=("$p")
done

kfsc_apt_setup
if [ ${#missing[@]} -gt 0 ]; then
	log "apt: installing ${missing[*]}"
	kfsc_apt_update bookworm
	kfsc_apt bookworm install -y --no-install-recommends "${apt_pkgs[@]}"
	kfsc_apt bookworm install -y --no-install-recommends -t bookworm-backports "${bpo_pkgs[@]}"
fi

# trixie downloads: unpacked, never installed; pinned by version here and
# by checksum in scripts/downloads.sha256 (checked on every run: a download
# that changed under the same name fails loudly).
dl=$KFSC_CACHE/dl
pins=$KFSC_ROOT/scripts/downloads.sha256
mkdir -p "$dl"
verify() { # dir: the pinned files of $dl/<dir>
	(cd "$dl" && grep " $1/" "$pins" | sha256sum -c --quiet --strict -) ||
		die "$dl/$1: not the pinned download (scripts/downloads.sha256)"
}
fetch_deb() { # package version -> $dl/<package>/ (extracted)
	local p=$1 v=$2
	if [ ! -e "$dl/$p/.done" ]; then
		kfsc_apt_update trixie
		rm -rf "$dl/$p" && mkdir -p "$dl/$p"
		(cd "$dl/$p" && kfsc_apt trixie download "$p=$v" >/dev/null) ||
			die "could not download $p $v"
		verify "$p"
		(cd "$dl/$p" && dpkg-deb -x ./*.deb root && touch .done)
	fi
	verify "$p"
}
fetch_deb "$KFSC_LINUX_PKG" 7.3.4-1~bpo13+1
fetch_deb bochsbios 3.0+dfsg-1
fetch_deb vgabios 0.8a+ds-2
# QEMU's firmware for microvm (qboot, linuxboot_dma): not in its source package.
fetch_deb qemu-system-data "$KFSC_QEMU_VER"
if [ ! -e "$dl/qemu-src/.done" ]; then
	kfsc_apt_update trixie
	rm -rf "$dl/qemu-src" && mkdir -p "$dl/qemu-src"
	(cd "$dl/qemu-src" && kfsc_apt trixie source --download-only "qemu=$KFSC_QEMU_VER" >/dev/null) ||
		die "could not download the QEMU $KFSC_QEMU_VER source package"
	verify qemu-src
	touch "$dl/qemu-src/.done"
fi
verify qemu-src
if [ ! -e "$dl/bochs-src/.done" ]; then
	kfsc_apt_update trixie
	rm -rf "$dl/bochs-src" && mkdir -p "$dl/bochs-src"
	# The .dsc may be refused (404); the two tarballs are what we need.
	(cd "$dl/bochs-src" && kfsc_apt trixie source --download-only "bochs=$KFSC_BOCHS_VER-1" >/dev/null 2>&1 || true)
	ls "$dl/bochs-src"/bochs_"$KFSC_BOCHS_VER".orig.tar.xz >/dev/null ||
		die "could not download the Bochs $KFSC_BOCHS_VER source"
	verify bochs-src
	touch "$dl/bochs-src/.done"
fi
verify bochs-src

# bindgen-cli, built with Debian's cargo-web against libclang-19.
if [ "$("$KFSC_CACHE/cargo/bin/bindgen" --version 2>/dev/null)" != "bindgen $KFSC_BINDGEN_VER" ]; then
	log "cargo: installing bindgen-cli $KFSC_BINDGEN_VER"
	CARGO_HOME=$KFSC_CACHE/cargo-home RUSTC=/usr/bin/rustc \
		"$KFSC_CARGO" install --locked --root "$KFSC_CACHE/cargo" \
		bindgen-cli --version "$KFSC_BINDGEN_VER"
fi

# virtme-ng in a venv of Debian's python3, pinned (the version of
# measurements in Documentation/platform.rst).
KFSC_VNG_VER=1.42
if [ "$("$KFSC_CACHE/venv/bin/pip" show virtme-ng 2>/dev/null | sed -n 's/^Version: //p')" != "$KFSC_VNG_VER" ]; then
	log "pip: installing virtme-ng $KFSC_VNG_VER"
	/usr/bin/python3 -m venv "$KFSC_CACHE/venv"
	"$KFSC_CACHE/venv/bin/pip" install -q "virtme-ng==$KFSC_VNG_VER"
fi
log "dependencies ready"
