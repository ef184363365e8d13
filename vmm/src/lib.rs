// SPDX-License-Identifier: GPL-2.0

//! The VMM side of `KVM_CAP_FORCE_SPEC_CTRL`, for VMMs built on rust-vmm's
//! kvm-ioctls (Firecracker, Cloud Hypervisor, ...).
//!
//! KVM offers only the mechanism: forcing bits of a guest's IA32_SPEC_CTRL,
//! per VM and per vCPU, changeable at runtime. The policy is the VMM's, as
//! the KVM maintainer asked in the review of Intel's RFC:
//!
//! - [`kvm`]: the ABI, typed.
//! - [`msr`]: Intel's virtual mitigation MSRs, emulated per vCPU through
//!   KVM's MSR filter and userspace MSR exits; the guest reports the
//!   software mitigations it uses.
//! - [`pool`]: which virtual-MSR support to advertise and which bits to
//!   force for a report, so that the mitigation stays effective on every
//!   host of the guest's migration pool (pure).
//! - [`forcing`]: a vCPU's report combined with the operator's VM-wide
//!   configuration (pure).
//! - [`hostfacts`]: this host's facts, for the pool files.
//!
//! The binaries: `kfsc-policy` (host facts, pools, decision tables) and
//! `kfsc-example-vmm` (a small VMM that runs a guest following the RFC's
//! protocol on several vCPUs).

/// The ABI numbers, generated at build time from
/// `include/uapi/linux/kvm_force_spec_ctrl.h`.
#[allow(missing_docs)]
pub mod abi {
    include!(concat!(env!("OUT_DIR"), "/abi.rs"));
}
pub mod forcing;
pub mod hostfacts;
pub mod kvm;
pub mod msr;
pub mod pool;
/// IA32_SPEC_CTRL bits, [`spec_ctrl::Config`] and its validation: the
/// kernel module's own pure policy file, shared so that both sides agree.
#[path = "../../rust/policy.rs"]
pub mod spec_ctrl;
