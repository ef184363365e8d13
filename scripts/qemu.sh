#!/usr/bin/env bash
# Build QEMU from Debian trixie's source package (its own patches applied by
# dpkg-source) plus qemu/patches/*.patch (the series that makes QEMU a user
# of KVM_CAP_FORCE_SPEC_CTRL): x86_64-softmmu with KVM only, no TCG, the
# microvm machine only, statically linked, so that the binary runs inside
# the test initramfs as it is.
#
#   source tree  $KFSC_CACHE/qemu/src-$VERSION   (git: Debian's tree + patches)
#   build tree   $KFSC_CACHE/qemu/build-$KEY     KEY = hash(version, flags, devices)
#   binary       $KFSC_CACHE/qemu/bin-$KEY-$PHASH/qemu-system-x86_64 (stripped)
#
# As for the kernel, a change of patches resets only the files the old series
# touched and re-applies the series: ninja rebuilds what changed.
# Prints the directory of the binary and its firmware on stdout.
source "$(dirname "$0")/lib.sh"

version=${KFSC_QEMU_VER#*:}
dsc=$KFSC_CACHE/dl/qemu-src/qemu_$version.dsc
[ -f "$dsc" ] || die "no QEMU source package; run scripts/deps.sh"
src=$KFSC_CACHE/qemu/src-$version
# Only the devices the tests use: microvm (ISA serial, virtio-mmio). Debian
# builds the same machine as qemu-system-x86_64-microvm.
devices='CONFIG_MICROVM=y'
flags=(--python=/usr/bin/python3 --target-list=x86_64-softmmu
	--disable-tcg --enable-kvm --without-default-features
	--without-default-devices --with-devices-x86_64=kfsc
	--disable-docs --disable-user --disable-tools --disable-install-blobs
	--disable-download --static)
key=$( (echo "$version ${flags[*]}"; echo "$devices") | sha256sum | cut -c1-16)
build=$KFSC_CACHE/qemu/build-$key
mapfile -t patches < <(kfsc_series "$KFSC_ROOT/qemu/patches")
out=$KFSC_CACHE/qemu/bin-$key-$(kfsc_series_hash "${patches[@]}")

if ! kfsc_git "$src" rev-parse -q --verify refs/tags/pristine >/dev/null 2>&1; then
	log "qemu: unpacking $KFSC_QEMU_VER"
	rm -rf "$src" && mkdir -p "$(dirname "$src")"
	# apt checked the files against the signed Release when it fetched
	# them; the .dsc's own signature needs a keyring we do not install.
	dpkg-source --no-check -x "$dsc" "$src" >/dev/null || die "dpkg-source -x $dsc failed"
	rm -f "$(dirname "$src")"/qemu_*.orig.tar.*  # dpkg-source's copy
	kfsc_git_init "$src" "qemu $KFSC_QEMU_VER (Debian source package)"
fi
kfsc_apply_series "$src" qemu "${patches[@]}"
# The device configuration, from $devices (part of the key) on every run:
# a tree unpacked by an older version of this script may hold another, and
# resetting the tree for a new series may drop it. Rewritten only when it
# differs, since meson reconfigures when it changes.
mak=$src/configs/devices/x86_64-softmmu/kfsc.mak
[ "$(cat "$mak" 2>/dev/null)" = "$devices" ] || echo "$devices" >"$mak"

if [ ! -x "$out/qemu-system-x86_64" ]; then
	if [ "$(cat "$build/.kfsc-key" 2>/dev/null)" != "$key" ]; then
		log "qemu: configuring $build"
		rm -rf "$build" && mkdir -p "$build"
		(cd "$build" && "$src/configure" "${flags[@]}" >configure.log 2>&1) ||
			die "qemu configure failed, see $build/configure.log"
		echo "$key" >"$build/.kfsc-key"
	fi
	log "qemu: building $out"
	ninja -C "$build" qemu-system-x86_64 >"$build/build.log" 2>&1 ||
		die "qemu build failed, see $build/build.log"
	rm -rf "$out.tmp" && mkdir -p "$out.tmp"
	strip -o "$out.tmp/qemu-system-x86_64" "$build/qemu-system-x86_64"
	# Firmware: microvm boots through qboot, which loads the kernel with the
	# linuxboot_dma option ROM; Debian's source package has no prebuilt
	# blobs, its qemu-system-data package has these two.
	cp "$KFSC_CACHE/dl/qemu-system-data/root/usr/share/qemu/qboot.rom" \
		"$KFSC_CACHE/dl/qemu-system-data/root/usr/share/qemu/linuxboot_dma.bin" "$out.tmp/" ||
		die "no QEMU firmware; run scripts/deps.sh"
	rm -rf "$out" && mv "$out.tmp" "$out"
fi
kfsc_prune 3 "$out" "$KFSC_CACHE"/qemu/bin-*
kfsc_prune 2 "$build" "$KFSC_CACHE"/qemu/build-*
echo "$out"
