// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The VMM side of `KVM_CAP_FORCE_SPEC_CTRL`, for VMMs built on rust-vmm's
//! kvm-ioctls (Firecracker, Cloud Hypervisor, ...).
//!
//! KVM offers only the mechanism: forcing bits of a guest's IA32_SPEC_CTRL,
//! per VM and per vCPU, changeable at runtime. The policy is the VMM's, as
//! the KVM maintainer asked in the review of Intel's RFC:
//!
//! - [`SpecCtrl`], [`Config`]: IA32_SPEC_CTRL bits and what to force.
//! - [`kvm`]: the ABI, typed, as extension traits on kvm-ioctls' `VmFd` and
//!   `VcpuFd`, and the host's facts as KVM reports them.
//! - [`forcing`]: [`forcing::VmForcing`] turns the operator's VM-wide
//!   configuration, the pool default and each vCPU's report into the
//!   per-vCPU actions to run (pure).
//! - [`defaults`]: the default policy for guests that report nothing: from
//!   the CPU model the guest is given and every host's facts, what each host
//!   forces and what the model should advertise (pure).
//! - [`msr`]: Intel's virtual mitigation MSRs, emulated per vCPU through
//!   KVM's MSR filter and userspace MSR exits; the guest reports the
//!   software mitigations it uses (pure).
//! - [`msr_filter`]: the MSR filter those need, to merge into the VMM's own.
//! - [`pool`]: host facts, pools, and what to force for a report (pure).
//! - [`hostfacts`]: this host's facts, from KVM.
//!
//! The binaries (feature `cli`): `kfsc-policy` (host facts, pools, decision
//! tables) and `kfsc-example-vmm` (a small VMM that runs a guest following
//! the RFC's protocol on several vCPUs).
//!
//! Forcing BHI_DIS_S on for a whole VM, where the host can, and SSBD off on
//! one vCPU:
//!
//! ```no_run
//! use kvm_force_spec_ctrl_vmm::kvm::{self as fsc, VcpuFdExt, VmFdExt};
//! use kvm_force_spec_ctrl_vmm::{Config, SpecCtrl};
//! use kvm_ioctls::Kvm;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let kvm = Kvm::new()?;
//! let vm = kvm.create_vm()?;
//! let vcpu = vm.create_vcpu(0)?;
//! let supported = fsc::supported(&kvm)?;
//! // Before the first KVM_RUN: the guest's first instruction runs forced.
//! let bhi = Config::force_on(SpecCtrl::BHI_DIS_S & supported);
//! vm.set_force_spec_ctrl(bhi)?;
//! // This vCPU's own configuration replaces the VM-wide one for it.
//! let ssbd_off = Config::new(SpecCtrl::SSBD, SpecCtrl::empty())?.check_supported(supported)?;
//! vcpu.set_force_spec_ctrl(ssbd_off)?;
//! vcpu.clear_force_spec_ctrl()?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

/// The ABI numbers of `<linux/kvm_force_spec_ctrl.h>`, generated from that
/// header by the project's `scripts/gen-abi.c` and committed (the project's
/// `make check` fails when they drift apart).
pub mod abi;
mod config;
pub mod defaults;
pub mod forcing;
pub mod hostfacts;
pub mod kvm;
pub mod msr;
pub mod msr_filter;
pub mod pool;
// The kernel module's own pure policy file, copied (the project's `make
// check` fails when they differ) so that both sides validate alike; the
// module's internal types stay private.
#[allow(dead_code)]
mod spec_ctrl;

pub use config::{Config, ConfigError, SpecCtrl, UnknownBits};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
