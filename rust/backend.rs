// SPDX-License-Identifier: GPL-2.0

//! Enforcement of a [`Config`] on one vCPU, as pure logic over [`VcpuHw`].
//!
//! The module implements [`VcpuHw`] with KVM's helpers for a loaded vCPU;
//! the host tests implement it with a model of the CPU and of KVM, and check
//! contract item 8 over random sequences of events.
//!
//! Invariant, while the vCPU is owned: the value KVM loads into
//! IA32_SPEC_CTRL at the next VM entry is `config.effective(guest view)`.
//!
//! `vmx-virt`: the guest view lives in the VMCS shadow field, the CPU merges
//! guest writes under the VMCS mask, and KVM re-reads the hardware MSR at
//! every VM exit (the MSR is not intercepted), so a guest access needs
//! nothing from the module. While forcing is off the vCPU is handed back to
//! KVM, which then behaves as without the module.

use crate::policy::{Backend, Config};

/// What a backend needs of KVM and the CPU, for one vCPU loaded on the
/// current CPU.
pub trait VcpuHw {
    /// Whether the module owns the vCPU's IA32_SPEC_CTRL.
    fn owned(&self) -> bool;
    /// Take or release the MSR (KVM re-derives interception on release).
    fn own(&self, own: bool);
    /// The value KVM loads into IA32_SPEC_CTRL at VM entry.
    fn hw(&self) -> u64;
    /// Set it.
    fn set_hw(&self, value: u64);
    /// Intercept guest RDMSR/WRMSR of the MSR (owned only).
    fn set_intercept(&self, intercept: bool);
    /// VMX "virtualize IA32_SPEC_CTRL" on or off.
    fn set_virt(&self, enable: bool);
    /// The VMCS mask and shadow fields.
    fn write_virt(&self, mask: u64, shadow: u64);
    /// The VMCS shadow field.
    fn read_shadow(&self) -> u64;
}

/// The guest's view of IA32_SPEC_CTRL, wherever it lives now.
pub fn guest_view(hw: &impl VcpuHw) -> u64 {
    if hw.owned() {
        hw.read_shadow()
    } else {
        // Not owned: KVM's value is the guest's own.
        hw.hw()
    }
}

/// Make `config` the enforced configuration.
pub fn apply(hw: &impl VcpuHw, backend: Backend, config: Config) {
    if backend != Backend::VmxVirt {
        // The other backends only ever see Config::OFF (refused earlier).
        return;
    }
    let guest = guest_view(hw);
    if config.is_active() {
        if !hw.owned() {
            hw.own(true);
            hw.set_intercept(false);
            hw.set_virt(true);
        }
        hw.write_virt(config.mask(), guest);
        hw.set_hw(config.effective(guest));
    } else if hw.owned() {
        hw.write_virt(0, guest);
        hw.set_virt(false);
        hw.set_hw(guest);
        hw.own(false);
    }
}

/// After KVM reset the vCPU: the guest view is 0.
pub fn reset(hw: &impl VcpuHw, config: Config) {
    if hw.owned() {
        hw.write_virt(config.mask(), 0);
        hw.set_hw(config.effective(0));
    }
}

/// WRMSR/KVM_SET_MSRS of a value KVM accepted, while owned. False if the
/// vCPU is not owned (KVM only calls this for owned vCPUs).
pub fn set_guest(hw: &impl VcpuHw, config: Config, value: u64) -> bool {
    if !hw.owned() {
        return false;
    }
    hw.write_virt(config.mask(), value);
    hw.set_hw(config.effective(value));
    true
}
