// SPDX-License-Identifier: GPL-2.0

//! The backends against a model of KVM and a VMX CPU (with "virtualize
//! IA32_SPEC_CTRL" for `vmx-virt`, without for `vmx-intercept`), with vmcs01
//! and vmcs02 (nested VMX, L1 passing the MSR through to L2), and of an SVM
//! CPU (without V_SPEC_CTRL for `svm-intercept`; with it for `svm-vspec`,
//! running the guest with the OR of its copy and the host copy), with vmcb01
//! and vmcb02 (nested SVM; KVM carries the guest copy between them): for random
//! sequences of guest writes and reads in L1 and L2, nested entries and
//! exits, host KVM_SET_MSRS/KVM_GET_MSRS, vCPU resets and configuration
//! changes, every VM entry loads `(guest view & !mask) | (value & mask)`
//! with the current VMCS masking the forced bits (contract item 8), and
//! every read returns the guest view (items 6, 7).

use std::cell::Cell;

use kvm_force_spec_ctrl_host::backend::{self, VcpuHw};
use kvm_force_spec_ctrl_host::policy::{Backend, Config};
use proptest::prelude::*;

/// One VMCS, as far as IA32_SPEC_CTRL goes.
#[derive(Clone, Copy, Debug, Default)]
struct Vmcs {
    /// "virtualize IA32_SPEC_CTRL" (KVM's controls shadow of this VMCS).
    virt: bool,
    mask: u64,
    shadow: u64,
    /// The MSR bitmap intercepts the MSR (vmcs02: merged at nested entry).
    intercept: bool,
}

/// KVM's state for one vCPU and the CPU's.
#[derive(Clone, Default)]
struct Sim {
    backend: Cell<Option<Backend>>,
    owned: Cell<bool>,
    sw_view: Cell<u64>,
    programmed: Cell<bool>,
    /// vmx->spec_ctrl: loaded at VM entry, saved at VM exit when not intercepted.
    hw: Cell<u64>,
    /// vmcs01 and vmcs02; `guest_mode` selects the current one.
    vmcs: [Cell<Vmcs>; 2],
    guest_mode: Cell<bool>,
    /// The configuration the module applied at the last `enter`.
    applied: Cell<Config>,
    /// The module's last interception choice while owned.
    intercepted: Cell<bool>,
    /// V_SPEC_CTRL's host copy while the guest runs, if the module set one:
    /// `(mask, value)` replacing the masked bits of the host's own value.
    host_copy: Cell<Option<(u64, u64)>>,
    /// The host's own IA32_SPEC_CTRL (x86_spec_ctrl_current: STIBP, SSBD
    /// the host chose), which V_SPEC_CTRL ORs into the guest's.
    host_own: Cell<u64>,
    /// The CPU has V_SPEC_CTRL (`svm-vspec`, or `svm-intercept` chosen by
    /// the module parameter on such a CPU).
    vspec_cpu: Cell<bool>,
}

impl Sim {
    fn cur(&self) -> &Cell<Vmcs> {
        &self.vmcs[usize::from(self.guest_mode.get())]
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut Vmcs)) {
        let mut v = self.vmcs[i].get();
        f(&mut v);
        self.vmcs[i].set(v);
    }

    fn update_cur(&self, f: impl FnOnce(&mut Vmcs)) {
        self.update(usize::from(self.guest_mode.get()), f)
    }

    /// vmx_set_intercept_for_msr() on vmcs01's bitmap.
    fn kvm_set_intercept01(&self, intercept: bool) {
        self.update(0, |v| v.intercept = intercept);
    }
}

impl VcpuHw for Sim {
    fn owned(&self) -> bool {
        self.owned.get()
    }
    fn own(&self, own: bool) {
        self.owned.set(own);
        if !own {
            // KVM's rule: with V_SPEC_CTRL pass through (the guest has the
            // MSR here), else intercept until the guest's value is non-zero.
            let v_spec_ctrl = self.vspec_cpu.get();
            self.kvm_set_intercept01(!v_spec_ctrl && self.hw.get() == 0);
        }
    }
    fn hw(&self) -> u64 {
        self.hw.get()
    }
    fn set_hw(&self, value: u64) {
        self.hw.set(value)
    }
    fn set_intercept(&self, intercept: bool) {
        assert!(
            self.owned.get(),
            "interception changed while KVM owns the MSR"
        );
        self.intercepted.set(intercept);
        self.kvm_set_intercept01(intercept);
        // kernel/patches: an L2 running now gets the interception at once.
        if intercept && self.guest_mode.get() {
            self.update(1, |v| v.intercept = true);
        }
    }
    fn intercepted(&self) -> bool {
        self.intercepted.get()
    }
    fn set_host_copy(&self, enable: bool, mask: u64, value: u64) {
        assert!(self.vspec_cpu.get(), "the CPU has no host copy");
        self.host_copy.set(enable.then_some((mask, value)));
    }
    fn cpu_has_host_copy(&self) -> bool {
        self.vspec_cpu.get()
    }
    fn host_copy(&self) -> u64 {
        // KVM's svm_spec_ctrl_host_copy(), from the host's value now.
        match self.host_copy.get() {
            Some((mask, value)) => (self.host_own.get() & !mask) | value,
            None => self.host_own.get(),
        }
    }
    fn set_virt(&self, enable: bool) {
        assert_eq!(
            self.backend(),
            Backend::VmxVirt,
            "the CPU has no such control"
        );
        self.update_cur(|v| v.virt = enable);
    }
    fn write_virt(&self, mask: u64, shadow: u64) {
        self.update_cur(|v| {
            v.mask = mask;
            v.shadow = shadow;
        });
    }
    fn read_shadow(&self) -> u64 {
        self.cur().get().shadow
    }
    fn sw_view(&self) -> u64 {
        self.sw_view.get()
    }
    fn set_sw_view(&self, value: u64) {
        self.sw_view.set(value)
    }
    fn vmcs_programmed(&self) -> bool {
        self.programmed.get()
    }
    fn set_vmcs_programmed(&self, programmed: bool) {
        self.programmed.set(programmed)
    }
}

impl Sim {
    fn new(backend: Backend, host_own: u64, vspec_cpu: bool) -> Self {
        let s = Sim::default();
        s.backend.set(Some(backend));
        s.host_own.set(host_own);
        s.vspec_cpu.set(match backend {
            Backend::SvmVspec => true,
            Backend::SvmIntercept => vspec_cpu,
            _ => false,
        });
        s.kvm_set_intercept01(true);
        s
    }

    fn backend(&self) -> Backend {
        self.backend.get().unwrap()
    }

    /// KVM's vmx_set_msr() for IA32_SPEC_CTRL, past its checks.
    fn kvm_set(&self, config: Config, value: u64) {
        if self.owned.get() {
            assert!(backend::set_guest(self, self.backend(), config, value));
        } else {
            self.hw.set(value);
            if value != 0 {
                self.kvm_set_intercept01(false);
            }
        }
    }

    /// KVM's vmx_get_msr() for IA32_SPEC_CTRL.
    fn kvm_get(&self) -> u64 {
        if self.owned.get() {
            backend::guest_view(self, self.backend())
        } else {
            self.hw.get()
        }
    }

    /// The module's VM-entry hook.
    fn entry(&self, config: Config, changed: bool) {
        if backend::needs_enter(self, changed) {
            backend::enter(self, self.backend(), config);
            self.applied.set(config);
        }
    }

    /// vmx_switch_vmcs(): the module's hook, then the other VMCS is current.
    /// SVM has no such hook: KVM copies the guest copy between vmcb01 and
    /// vmcb02 (one `hw` here), and the module keeps nothing per VMCB.
    fn switch(&self, to_l2: bool) {
        if matches!(self.backend(), Backend::VmxVirt | Backend::VmxIntercept) {
            backend::vmcs_switch(self, self.backend());
        }
        self.guest_mode.set(to_l2);
    }

    /// What the CPU runs the guest with: with V_SPEC_CTRL, the guest copy
    /// ORed with the host copy; without, the guest's value alone.
    fn in_force(&self) -> u64 {
        if self.vspec_cpu.get() {
            self.hw.get() | self.host_copy()
        } else {
            self.hw.get()
        }
    }

    /// The guest (L1 or L2) runs one WRMSR (or RDMSR): VM entry, the access,
    /// VM exit. L1 passes the MSR through to L2, so L0 handles what exits.
    fn guest_access(&self, config: Config, changed: bool, write: Option<u64>) -> u64 {
        self.entry(config, changed);
        let vmcs = self.cur().get();
        let mut msr = self.hw.get();
        let read;
        if vmcs.intercept {
            if let Some(x) = write {
                self.kvm_set(config, x);
            }
            read = self.kvm_get();
        } else {
            if let Some(x) = write {
                if vmcs.virt {
                    self.update_cur(|v| v.shadow = x);
                    msr = (msr & vmcs.mask) | (x & !vmcs.mask);
                } else {
                    msr = x;
                }
            }
            read = if vmcs.virt {
                self.cur().get().shadow
            } else {
                msr
            };
            // At the exit KVM saves the MSR: with the control on (kernel
            // patch 15) it derives it from its entry value, the mask and the
            // shadow, without a RDMSR. That is the CPU's value only while
            // the module keeps hw == (hw & mask) | (shadow & !mask) at every
            // entry, which this checks at every access.
            let saved = if vmcs.virt {
                let shadow = self.cur().get().shadow;
                let derived = (self.hw.get() & vmcs.mask) | (shadow & !vmcs.mask);
                assert_eq!(
                    derived, msr,
                    "KVM's derived IA32_SPEC_CTRL is not the CPU's"
                );
                derived
            } else {
                msr
            };
            self.hw.set(saved);
        }
        read
    }
}

#[derive(Clone, Debug)]
enum Op {
    GuestWrite(u64),
    GuestRead,
    HostSet(u64),
    HostGet,
    Reset,
    Configure(u64, u64),
    /// L1 enters L2 (VMLAUNCH/VMRESUME), or L2 exits to L1.
    NestedSwitch,
    /// L1 leaves VMX operation: KVM frees vmcs02; the next one is fresh.
    FreeVmcs02,
}

fn op() -> impl Strategy<Value = Op> {
    let bits = 0u64..0x800;
    prop_oneof![
        bits.clone().prop_map(Op::GuestWrite),
        Just(Op::GuestRead),
        bits.clone().prop_map(Op::HostSet),
        Just(Op::HostGet),
        Just(Op::Reset),
        (bits.clone(), bits).prop_map(|(m, v)| Op::Configure(m, v & m)),
        Just(Op::NestedSwitch),
        Just(Op::FreeVmcs02),
    ]
}

/// What the next VM entry runs with, checked on a copy so that states
/// between a VMCS switch and the next entry stay reachable.
fn check_next_entry(
    sim: &Sim,
    config: Config,
    changed: bool,
    guest: u64,
) -> Result<(), TestCaseError> {
    let next = sim.clone();
    next.entry(config, changed);
    // Contract item 8; on V_SPEC_CTRL hosts the host's own bits outside the
    // mask stay ORed in, as on stock KVM.
    let host = if next.vspec_cpu.get() {
        next.host_own.get() & !config.mask()
    } else {
        0
    };
    prop_assert_eq!(next.in_force(), config.effective(guest) | host);
    if next.owned.get() {
        prop_assert_eq!(backend::in_force(&next, next.backend()), next.in_force());
    }
    prop_assert_eq!(next.owned.get(), config.is_active());
    let vmcs = next.cur().get();
    if !next.owned.get() {
        // Stock KVM: no control in the VMCS the guest runs with.
        prop_assert!(!vmcs.virt, "control left on: {:?}", vmcs);
    } else if next.backend() == Backend::VmxVirt {
        prop_assert!(
            vmcs.virt && vmcs.mask == config.mask() && vmcs.shadow == guest,
            "{:?}",
            vmcs
        );
    } else if next.backend().intercepts(config) {
        prop_assert!(vmcs.intercept, "owned but passed through: {:?}", vmcs);
    } else if !next.guest_mode.get() {
        // svm-vspec forcing bits on only: no exits (an L2 keeps an earlier
        // interception until its next nested VMRUN: harmless).
        prop_assert!(!vmcs.intercept, "intercepted for nothing: {:?}", vmcs);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn every_entry_enforces(
        ops in proptest::collection::vec(op(), 1..80),
        backend in prop_oneof![
            Just(Backend::VmxVirt),
            Just(Backend::VmxIntercept),
            Just(Backend::SvmIntercept),
            Just(Backend::SvmVspec),
        ],
        // The host's own STIBP and SSBD (spectre_v2_user=on,
        // spec_store_bypass_disable=on), which can change between entries.
        host_own in 0u64..8,
        host_later in 0u64..8,
        vspec_cpu: bool,
    ) {
        let host_own = host_own & 0b110;
        let sim = Sim::new(backend, host_own, vspec_cpu);
        let mut config = Config::OFF;
        // A configuration published since the vCPU's last entry.
        let mut changed = true;
        let mut guest = 0u64;
        for op in ops {
            match op {
                Op::GuestWrite(x) => {
                    sim.guest_access(config, changed, Some(x));
                    changed = false;
                    guest = x;
                }
                Op::GuestRead => {
                    prop_assert_eq!(sim.guest_access(config, changed, None), guest);
                    changed = false;
                }
                Op::HostSet(x) => {
                    sim.kvm_set(config, x);
                    guest = x;
                }
                Op::HostGet => prop_assert_eq!(sim.kvm_get(), guest),
                Op::Reset => {
                    if sim.guest_mode.get() {
                        sim.switch(false); // vmx_leave_nested()
                    }
                    sim.hw.set(0); // vmx_vcpu_reset()
                    backend::reset(&sim, backend, sim.applied.get());
                    guest = 0;
                }
                Op::Configure(m, v) => {
                    config = Config::new(m, v).unwrap();
                    changed = true;
                }
                Op::NestedSwitch => {
                    let to_l2 = !sim.guest_mode.get();
                    sim.switch(to_l2);
                    if to_l2 {
                        // nested_vmx_prepare_msr_bitmap(): L0's or L1's (pass-through).
                        let l0 = sim.vmcs[0].get().intercept;
                        sim.update(1, |v| v.intercept = l0);
                    }
                }
                Op::FreeVmcs02 => {
                    if !sim.guest_mode.get() {
                        sim.vmcs[1].set(Vmcs::default());
                    }
                }
            }
            check_next_entry(&sim, config, changed, guest)?;
            // Another host task with its own SSBD/STIBP runs between entries.
            sim.host_own.set(sim.host_own.get() ^ (host_later & 0b110));
            check_next_entry(&sim, config, changed, guest)?;
        }
    }
}
