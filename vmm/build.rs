// SPDX-License-Identifier: GPL-2.0
//! The ABI numbers come from the uapi header, their one definition: compile
//! and run `scripts/gen-abi.c` (as the module's build does) and include its
//! output.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("..");
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let gen = root.join("scripts/gen-abi.c");
    let header = root.join("include/uapi/linux/kvm_force_spec_ctrl.h");
    println!("cargo:rerun-if-changed={}", gen.display());
    println!("cargo:rerun-if-changed={}", header.display());
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-Wall", "-Werror", "-I"])
        .arg(root.join("include/uapi"))
        .arg(&gen)
        .arg("-o")
        .arg(out.join("gen-abi"))
        .status()
        .unwrap_or_else(|e| panic!("{cc}: {e}"));
    assert!(status.success(), "{cc} failed on {}", gen.display());
    let abi = Command::new(out.join("gen-abi"))
        .output()
        .expect("run gen-abi");
    assert!(abi.status.success(), "gen-abi failed");
    std::fs::write(out.join("abi.rs"), abi.stdout).expect("write abi.rs");
}
