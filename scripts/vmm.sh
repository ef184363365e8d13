#!/usr/bin/env bash
# The userspace crate (vmm/, a member of the Cargo workspace at the top):
#   vmm.sh test    cargo test of the crate (policy tables, proptests)
#   vmm.sh lint    clippy -D warnings and rustfmt --check
#   vmm.sh build   static release binaries for the initramfs; prints their
#                  directory
# With Debian's rustc-web (the compiler of the module) and crates.io; builds
# are cached in $KFSC_CACHE/vmm-target.
source "$(dirname "$0")/lib.sh"
kfsc_kernel_env
export CARGO_HOME=$KFSC_CACHE/cargo-home CARGO_TARGET_DIR=$KFSC_CACHE/vmm-target
cd "$KFSC_ROOT"
pkg=(-p kvm-force-spec-ctrl-vmm)
case ${1:?test, lint or build} in
test)
	"$KFSC_CARGO" test "${pkg[@]}"
	;;
lint)
	"$KFSC_CARGO" clippy --quiet "${pkg[@]}" --all-targets -- -D warnings
	rustfmt --edition 2021 --check vmm/build.rs vmm/src/lib.rs vmm/src/bin/*.rs vmm/tests/*.rs
	;;
build)
	# An explicit --target keeps crt-static away from build scripts.
	RUSTFLAGS="-C target-feature=+crt-static" "$KFSC_CARGO" build --quiet --release \
		--target x86_64-unknown-linux-gnu "${pkg[@]}" --bins >&2
	out=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
	file "$out/kfsc-example-vmm" | grep -q 'static' ||
		die "kfsc-example-vmm is not statically linked"
	echo "$out"
	;;
*)
	die "usage: vmm.sh test|lint|build"
	;;
esac
