#!/usr/bin/env bash
# The userspace crate (vmm/, a member of the Cargo workspace at the top):
#   vmm.sh test    cargo test of the crate (policy tables, proptests,
#                  doctests)
#   vmm.sh lint    the committed ABI numbers and policy file agree with their
#                  sources; clippy -D warnings, rustfmt --check, rustdoc
#                  without warnings; cargo publish --dry-run; the MSRV build
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
	"$KFSC_CARGO" test "${pkg[@]}" --all-features
	;;
lint)
	# The crate is self-contained: what it shares with the module is
	# committed in it, and must not drift from the sources.
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	gcc -Wall -Werror -I "$KFSC_ROOT/include/uapi" "$KFSC_ROOT/scripts/gen-abi.c" -o "$tmp/gen-abi"
	"$tmp/gen-abi" "Apache-2.0 OR BSD-3-Clause" >"$tmp/abi.rs"
	cmp "$tmp/abi.rs" vmm/src/abi.rs ||
		die "vmm/src/abi.rs differs from the uapi header: regenerate it with scripts/gen-abi.c 'Apache-2.0 OR BSD-3-Clause'"
	cmp rust/policy.rs vmm/src/spec_ctrl.rs ||
		die "vmm/src/spec_ctrl.rs differs from rust/policy.rs: copy it"
	"$KFSC_CARGO" clippy --quiet "${pkg[@]}" --all-targets --all-features -- -D warnings
	rustfmt --edition 2021 --check vmm/src/*.rs vmm/src/bin/*.rs vmm/tests/*.rs
	RUSTDOCFLAGS="-D warnings" "$KFSC_CARGO" doc --quiet --no-deps "${pkg[@]}" --all-features
	"$KFSC_CARGO" publish --quiet --dry-run --allow-dirty "${pkg[@]}"
	# The MSRV (rust-version) with the machine's rustup toolchain.
	msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' vmm/Cargo.toml)
	rustup_cargo=$HOME/.cargo/bin/cargo
	[ -x "$rustup_cargo" ] || die "no rustup toolchain at $rustup_cargo for the MSRV build"
	have=$("$HOME/.cargo/bin/rustc" --version | cut -d' ' -f2)
	[ "${have%.*}" = "$msrv" ] || die "the MSRV build needs Rust $msrv, rustup has $have"
	CARGO_TARGET_DIR=$KFSC_CACHE/vmm-msrv-target "$rustup_cargo" build --quiet "${pkg[@]}" --all-features --all-targets
	;;
build)
	# An explicit --target keeps crt-static away from build scripts.
	RUSTFLAGS="-C target-feature=+crt-static" "$KFSC_CARGO" build --quiet --release \
		--target x86_64-unknown-linux-gnu "${pkg[@]}" --features cli --bins >&2
	out=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
	file "$out/kfsc-example-vmm" | grep -q 'static' ||
		die "kfsc-example-vmm is not statically linked"
	echo "$out"
	;;
*)
	die "usage: vmm.sh test|lint|build"
	;;
esac
