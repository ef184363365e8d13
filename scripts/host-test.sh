#!/usr/bin/env bash
# cargo test of the module's pure Rust files (rust/host), with the same
# compiler as the kernel (Debian's rustc-web 1.96).
source "$(dirname "$0")/lib.sh"
kfsc_kernel_env
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The ABI constants come from the uapi header, here with the host's <linux/kvm.h>.
gcc -Wall -Werror -I "$KFSC_ROOT/include/uapi" "$KFSC_ROOT/scripts/gen-abi.c" -o "$tmp/gen-abi"
"$tmp/gen-abi" >"$tmp/abi.rs"
cmp -s "$tmp/abi.rs" "$KFSC_ROOT/rust/abi_generated.rs" || cp "$tmp/abi.rs" "$KFSC_ROOT/rust/abi_generated.rs"
export CARGO_HOME=$KFSC_CACHE/cargo-home CARGO_TARGET_DIR=$KFSC_CACHE/host-target
cd "$KFSC_ROOT/rust/host"
"$KFSC_CARGO" test --quiet "$@"
