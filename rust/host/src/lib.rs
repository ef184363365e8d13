// SPDX-License-Identifier: GPL-2.0

//! The module's pure files, compiled for the host so that `cargo test`
//! exercises the very code the kernel module runs.

use core::sync::atomic::{AtomicU64, Ordering};

// The module's files are reached through symbolic links in this directory
// (src/backend.rs -> ../../backend.rs, ...), not `#[path = "../../x.rs"]`:
// cargo records a source outside the package by its absolute path, and
// with the target directory shared by every checkout (the cache) a change
// made in one checkout was checked against another's file, so the test
// binary was not rebuilt. Inside the package the path is relative.

/// The ABI numbers, generated from `include/uapi/linux/kvm_force_spec_ctrl.h`.
#[path = "abi_generated.rs"]
pub mod abi;
#[path = "backend.rs"]
pub mod backend;
#[path = "policy.rs"]
pub mod policy;
#[path = "protocol.rs"]
pub mod protocol;

/// The host's atomics for [`protocol::Word`]; the kernel module uses
/// `kernel::sync::atomic`, the loom model loom's.
impl protocol::Word for AtomicU64 {
    fn new(v: u64) -> Self {
        AtomicU64::new(v)
    }
    fn load_acquire(&self) -> u64 {
        self.load(Ordering::Acquire)
    }
    fn load_relaxed(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
    fn store_release(&self, v: u64) {
        self.store(v, Ordering::Release)
    }
}
