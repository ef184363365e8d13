// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

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
//! The binaries (feature `cli`): `kfsc-policy` (host facts, pools, decision
//! tables) and `kfsc-example-vmm` (a small VMM that runs a guest following
//! the RFC's protocol on several vCPUs).
//!
//! Forcing BHI_DIS_S on for a whole VM, where the host can, and SSBD off on
//! one vCPU:
//!
//! ```no_run
//! use kvm_force_spec_ctrl_vmm::kvm::{self as fsc, VcpuFdExt, VmFdExt};
//! use kvm_force_spec_ctrl_vmm::spec_ctrl::bits;
//! use kvm_ioctls::Kvm;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let kvm = Kvm::new()?;
//! let vm = kvm.create_vm()?;
//! let vcpu = vm.create_vcpu(0)?;
//! let supported = if fsc::available(&kvm) { fsc::supported(&kvm)? } else { 0 };
//! if supported & bits::BHI_DIS_S != 0 {
//!     // Before the first KVM_RUN: the guest's first instruction runs forced.
//!     vm.set_force_spec_ctrl(fsc::config(bits::BHI_DIS_S, bits::BHI_DIS_S, supported)?)?;
//! }
//! if supported & bits::SSBD != 0 {
//!     // This vCPU's own configuration replaces the VM-wide one for it.
//!     vcpu.set_force_spec_ctrl(fsc::config(bits::SSBD, 0, supported)?)?;
//!     vcpu.clear_force_spec_ctrl()?;
//! }
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

/// The ABI numbers of `<linux/kvm_force_spec_ctrl.h>`, generated from that
/// header by the project's `scripts/gen-abi.c` and committed (the project's
/// `make check` fails when they drift apart).
pub mod abi;
pub mod forcing;
pub mod hostfacts;
pub mod kvm;
pub mod msr;
pub mod pool;
/// IA32_SPEC_CTRL bits, [`spec_ctrl::Config`] and its validation: a copy of
/// the kernel module's own pure policy file (the project's `make check`
/// fails when they differ), so that both sides agree.
pub mod spec_ctrl;
