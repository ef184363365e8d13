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
//! - `vmx-virt`: the guest view lives in the VMCS shadow field, the CPU
//!   merges guest writes under the VMCS mask, and KVM re-reads the hardware
//!   MSR at every VM exit (the MSR is not intercepted), so a guest access
//!   needs nothing from the module.
//! - `vmx-intercept` (and `svm-intercept`): guest RDMSR/WRMSR exit; KVM hands
//!   them to the module (`Provider::get_msr`/`set_msr`), which keeps the
//!   guest view in software and sets the hardware value after each write.
//!
//! While forcing is off the vCPU is handed back to KVM, which then behaves
//! as without the module.

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
    /// VMX "virtualize IA32_SPEC_CTRL" on or off (`vmx-virt` only).
    fn set_virt(&self, enable: bool);
    /// The VMCS mask and shadow fields (`vmx-virt` only).
    fn write_virt(&self, mask: u64, shadow: u64);
    /// The VMCS shadow field (`vmx-virt` only).
    fn read_shadow(&self) -> u64;
    /// The guest view kept in software (intercept backends).
    fn sw_view(&self) -> u64;
    /// Set it.
    fn set_sw_view(&self, value: u64);
}

/// Where a backend keeps the guest view while the vCPU is owned.
fn store_view(hw: &impl VcpuHw, backend: Backend, mask: u64, view: u64) {
    if backend == Backend::VmxVirt {
        hw.write_virt(mask, view);
    } else {
        hw.set_sw_view(view);
    }
}

/// The guest's view of IA32_SPEC_CTRL, wherever it lives now.
pub fn guest_view(hw: &impl VcpuHw, backend: Backend) -> u64 {
    if !hw.owned() {
        // Not owned: KVM's value is the guest's own.
        hw.hw()
    } else if backend == Backend::VmxVirt {
        hw.read_shadow()
    } else {
        hw.sw_view()
    }
}

/// Make `config` the enforced configuration.
pub fn apply(hw: &impl VcpuHw, backend: Backend, config: Config) {
    if backend == Backend::None {
        // Without a backend the configuration is always off (refused earlier).
        return;
    }
    let guest = guest_view(hw, backend);
    if config.is_active() {
        if !hw.owned() {
            hw.own(true);
            if backend == Backend::VmxVirt {
                hw.set_intercept(false);
                hw.set_virt(true);
            } else {
                hw.set_intercept(true);
            }
        }
        store_view(hw, backend, config.mask(), guest);
        hw.set_hw(config.effective(guest));
    } else if hw.owned() {
        if backend == Backend::VmxVirt {
            hw.write_virt(0, guest);
            hw.set_virt(false);
        }
        hw.set_hw(guest);
        hw.own(false);
    }
}

/// After KVM reset the vCPU: the guest view is 0.
pub fn reset(hw: &impl VcpuHw, backend: Backend, config: Config) {
    if hw.owned() {
        store_view(hw, backend, config.mask(), 0);
        hw.set_hw(config.effective(0));
    }
}

/// WRMSR/KVM_SET_MSRS of a value KVM accepted, while owned. False if the
/// vCPU is not owned (KVM only calls this for owned vCPUs).
pub fn set_guest(hw: &impl VcpuHw, backend: Backend, config: Config, value: u64) -> bool {
    if !hw.owned() {
        return false;
    }
    store_view(hw, backend, config.mask(), value);
    hw.set_hw(config.effective(value));
    true
}
