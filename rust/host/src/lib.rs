// SPDX-License-Identifier: GPL-2.0

//! The module's pure files, compiled for the host so that `cargo test`
//! exercises the very code the kernel module runs.

/// The ABI numbers, generated from `include/uapi/linux/kvm_force_spec_ctrl.h`.
#[path = "../../abi_generated.rs"]
pub mod abi;
#[path = "../../backend.rs"]
pub mod backend;
#[path = "../../policy.rs"]
pub mod policy;
