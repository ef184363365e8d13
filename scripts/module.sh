#!/usr/bin/env bash
# Build kvm_force_spec_ctrl.ko against the test kernel: generate the Rust ABI
# constants from the uapi header, check the ABI numbers against the kernel's
# <linux/kvm.h>, then Kbuild (make -C $KDIR M=$KFSC_ROOT). CLIPPY=1 runs
# clippy as part of the build, as in the kernel.
# The objects go to a directory per kernel build (kfsc_module_out, Kbuild's
# MO=), not into the source tree: the module is then
# <that dir>/rust/kvm_force_spec_ctrl.ko.
#   KDIR=<kernel build dir> module.sh
source "$(dirname "$0")/lib.sh"
kfsc_kernel_env
KDIR=${KDIR:?KDIR must name the kernel build directory}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -Wall -Werror -I "$KFSC_ROOT/include/uapi" -isystem "$KDIR/usr/include" \
	"$KFSC_ROOT/scripts/gen-abi.c" -o "$tmp/gen-abi"
"$tmp/gen-abi" >"$tmp/abi.rs"
cmp -s "$tmp/abi.rs" "$KFSC_ROOT/rust/abi_generated.rs" ||
	cp "$tmp/abi.rs" "$KFSC_ROOT/rust/abi_generated.rs"

"$KFSC_ROOT/scripts/abi-check.sh" "$KDIR"

out=$(kfsc_module_out)
mkdir -p "$out"
# The kernel's toolchain (LLVM=... for the debug kernel; scripts/kernel.sh).
read -ra toolchain <"$KDIR/kfsc-make-flags" || die "$KDIR/kfsc-make-flags: not built by scripts/kernel.sh"
make -C "$KDIR" M="$KFSC_ROOT" MO="$out" "${toolchain[@]}" ${CLIPPY:+CLIPPY=1} modules >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log" >&2; die "module build failed"; }
grep -E 'warning|error' "$tmp/build.log" >&2 && die "module build has warnings"
log "module: $out/rust/kvm_force_spec_ctrl.ko"
