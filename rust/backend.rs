// SPDX-License-Identifier: GPL-2.0

//! Enforcement of a [`Config`] on one vCPU, as pure logic over [`VcpuHw`].
//!
//! The module implements [`VcpuHw`] with KVM's helpers for a loaded vCPU;
//! the host tests implement it with a model of the CPU and of KVM (two
//! VMCSes, nested entries and exits included), and check contract item 8
//! over random sequences of events.
//!
//! Invariant, while the vCPU is owned: the value KVM loads into
//! IA32_SPEC_CTRL at the next VM entry is `config.effective(guest view)`,
//! and the current VMCS, once [`enter`] ran for it, masks the forced bits.
//!
//! - `vmx-virt`: the guest view lives in the shadow field of the current
//!   VMCS, the CPU merges guest writes under the VMCS mask, and at every VM
//!   exit KVM derives the hardware MSR from its entry value, the mask and the
//!   shadow (kernel patch 15, no RDMSR), so a guest access needs nothing from
//!   the module. That derivation is exact because [`enter`] always programs
//!   the mask and shadow with the value it loads (`write_virt(mask, view)`
//!   with `set_hw(effective(view))`): the hardware value and the shadow
//!   agree outside the mask at every entry.
//! - `vmx-intercept` (and `svm-intercept`): guest RDMSR/WRMSR exit; KVM hands
//!   them to the module (`Provider::get_msr`/`set_msr`), which keeps the
//!   guest view in software and sets the hardware value after each write.
//! - `svm-vspec` (AMD V_SPEC_CTRL): the CPU runs the guest with the OR of a
//!   host copy and a guest copy of the MSR. While the guest runs, the host
//!   copy is the host's own value with the masked bits replaced by the
//!   forced value (KVM computes it before each VMRUN, loads it after CLGI
//!   and restores the host's own after #VMEXIT), so the host's own STIBP
//!   and SSBD stay in force outside the mask, as on stock KVM. Without a bit
//!   forced off, the guest copy is the guest view, passed through: guest accesses do not exit, and
//!   `view | value` is `effective(view)` because every masked bit is forced
//!   on. With a bit forced off, guest accesses exit as in `svm-intercept`
//!   and the guest copy holds `effective(view)`, which includes `value`.
//!
//! Nested SVM: KVM carries the guest copy (or `svm->spec_ctrl`) between
//! vmcb01 and vmcb02 at nested VMRUN and #VMEXIT, and the host copy is the
//! vCPU's, so an L2 that L1 lets access the MSR runs with the same merge as
//! L1; an interception the module starts while L2 runs reaches vmcb02's MSR
//! bitmap at once (kernel/patches). No VMCS switch hook is needed.
//!
//! Per-VMCS state (nested VMX): the control bit of each VMCS lives in KVM's
//! controls shadow of that VMCS; its mask and shadow fields are rewritten by
//! [`enter`] after every switch between vmcs01 and vmcs02, because the VMCS
//! that becomes current may hold the mask of an older configuration and a
//! shadow the guest has since overwritten through the other VMCS. Between
//! [`vmcs_switch`] and the next [`enter`], the guest view lives in software.
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
    /// Intercept guest RDMSR/WRMSR of the MSR (owned only); KVM applies it to
    /// the VMCS (VMCB) of L2 too, if one runs.
    fn set_intercept(&self, intercept: bool);
    /// The last [`VcpuHw::set_intercept`] since the vCPU was owned.
    fn intercepted(&self) -> bool;
    /// V_SPEC_CTRL's host copy while the guest runs: the host's own value
    /// with the bits of `mask` taken from `value`, or the host's own
    /// (`svm-vspec` only). The host's own bits outside the mask stay in
    /// force, as on stock KVM (contract item 8).
    fn set_host_copy(&self, enable: bool, mask: u64, value: u64);
    /// The host copy the next VM entry loads (`svm-vspec` only).
    fn host_copy(&self) -> u64;
    /// Whether the CPU has V_SPEC_CTRL (a host copy ORed in).
    fn cpu_has_host_copy(&self) -> bool;
    /// VMX "virtualize IA32_SPEC_CTRL" on or off in the current VMCS
    /// (`vmx-virt` only).
    fn set_virt(&self, enable: bool);
    /// The mask and shadow fields of the current VMCS (`vmx-virt` only).
    fn write_virt(&self, mask: u64, shadow: u64);
    /// The shadow field of the current VMCS (`vmx-virt` only).
    fn read_shadow(&self) -> u64;
    /// The guest view kept in software (intercept backends, and `vmx-virt`
    /// between a VMCS switch and the next entry).
    fn sw_view(&self) -> u64;
    /// Set it.
    fn set_sw_view(&self, value: u64);
    /// Whether [`enter`] programmed the current VMCS since it became current.
    fn vmcs_programmed(&self) -> bool;
    /// Set it.
    fn set_vmcs_programmed(&self, programmed: bool);
}

/// Whether the guest view is in the current VMCS's shadow field.
fn view_in_vmcs(hw: &impl VcpuHw, backend: Backend) -> bool {
    backend == Backend::VmxVirt && hw.owned() && hw.vmcs_programmed()
}

/// Whether the guest view is the value KVM loads, passed through (V_SPEC_CTRL's
/// guest copy while `svm-vspec` does not intercept).
fn view_in_hw(hw: &impl VcpuHw, backend: Backend) -> bool {
    backend.uses_host_copy() && hw.owned() && !hw.intercepted()
}

/// Store the guest view where it lives now, and what KVM loads with it.
fn store_view(hw: &impl VcpuHw, backend: Backend, config: Config, view: u64) {
    if view_in_hw(hw, backend) {
        hw.set_hw(view);
        return;
    }
    if view_in_vmcs(hw, backend) {
        hw.write_virt(config.mask(), view);
    } else {
        hw.set_sw_view(view);
    }
    hw.set_hw(config.effective(view));
}

/// The guest's view of IA32_SPEC_CTRL, wherever it lives now.
pub fn guest_view(hw: &impl VcpuHw, backend: Backend) -> u64 {
    if !hw.owned() || view_in_hw(hw, backend) {
        // Not owned: KVM's value is the guest's own; passed through: the
        // guest copy is.
        hw.hw()
    } else if view_in_vmcs(hw, backend) {
        hw.read_shadow()
    } else {
        hw.sw_view()
    }
}

/// Whether the entry path must call [`enter`]: the configuration changed,
/// or the current VMCS was not programmed since it became current.
pub fn needs_enter(hw: &impl VcpuHw, config_changed: bool) -> bool {
    config_changed || !hw.vmcs_programmed()
}

/// On the VM-entry path (IRQs off), when [`needs_enter`]: make `config` the
/// enforced configuration, in the current VMCS.
pub fn enter(hw: &impl VcpuHw, backend: Backend, config: Config) {
    if backend == Backend::None {
        // Without a backend the configuration is always off (refused earlier).
        hw.set_vmcs_programmed(true);
        return;
    }
    let guest = guest_view(hw, backend);
    if config.is_active() {
        let intercept = backend.intercepts(config);
        if !hw.owned() {
            hw.own(true);
            hw.set_intercept(intercept);
        } else if hw.intercepted() != intercept {
            hw.set_intercept(intercept);
        }
        if backend == Backend::VmxVirt {
            // The current VMCS may not be programmed yet: write it whatever.
            hw.set_virt(true);
            hw.write_virt(config.mask(), guest);
            hw.set_hw(config.effective(guest));
        } else {
            if backend.sets_host_copy(hw.cpu_has_host_copy()) {
                hw.set_host_copy(true, config.mask(), config.value());
            }
            // Where the view lives follows the interception just chosen.
            store_view(hw, backend, config, guest);
        }
    } else {
        if backend == Backend::VmxVirt {
            // Also clears a control left on in a VMCS that was switched out
            // while forcing was on.
            if hw.owned() {
                hw.write_virt(0, guest);
            }
            hw.set_virt(false);
        }
        if hw.owned() {
            hw.set_hw(guest);
            if backend.sets_host_copy(hw.cpu_has_host_copy()) {
                hw.set_host_copy(false, 0, 0);
            }
            hw.own(false);
        }
    }
    hw.set_vmcs_programmed(true);
}

/// The value in force while the guest runs: what KVM loads, with
/// V_SPEC_CTRL's host copy ORed in (the host's own bits outside the mask,
/// the forced ones inside).
pub fn in_force(hw: &impl VcpuHw, backend: Backend) -> u64 {
    if backend.sets_host_copy(hw.cpu_has_host_copy()) && hw.owned() {
        hw.hw() | hw.host_copy()
    } else {
        hw.hw()
    }
}

/// KVM is about to replace the current VMCS (vmcs01 <-> vmcs02): move the
/// guest view out of it, and have [`enter`] program the next one.
pub fn vmcs_switch(hw: &impl VcpuHw, backend: Backend) {
    if view_in_vmcs(hw, backend) {
        hw.set_sw_view(hw.read_shadow());
    }
    hw.set_vmcs_programmed(false);
}

/// After KVM reset the vCPU: the guest view is 0.
pub fn reset(hw: &impl VcpuHw, backend: Backend, config: Config) {
    if hw.owned() {
        store_view(hw, backend, config, 0);
    }
}

/// WRMSR/KVM_SET_MSRS of a value KVM accepted, while owned. False if the
/// vCPU is not owned (KVM only calls this for owned vCPUs).
pub fn set_guest(hw: &impl VcpuHw, backend: Backend, config: Config, value: u64) -> bool {
    if !hw.owned() {
        return false;
    }
    store_view(hw, backend, config, value);
    true
}
