// SPDX-License-Identifier: GPL-2.0

//! The backends against a model of KVM and a VMX CPU (with "virtualize
//! IA32_SPEC_CTRL" for `vmx-virt`, without for `vmx-intercept`): for random
//! sequences of guest writes and reads, host KVM_SET_MSRS/KVM_GET_MSRS, vCPU
//! resets and configuration changes, every VM entry loads
//! `(guest view & !mask) | (value & mask)` (contract item 8) and every read
//! returns the guest view (items 6, 7).

use std::cell::Cell;

use kvm_force_spec_ctrl_host::backend::{self, VcpuHw};
use kvm_force_spec_ctrl_host::policy::{Backend, Config};
use proptest::prelude::*;

/// KVM's state for one vCPU and the CPU's, as far as IA32_SPEC_CTRL goes.
#[derive(Default)]
struct Sim {
    backend: Cell<Option<Backend>>,
    owned: Cell<bool>,
    sw_view: Cell<u64>,
    /// vmx->spec_ctrl: loaded at VM entry, saved at VM exit when not intercepted.
    hw: Cell<u64>,
    intercept: Cell<bool>,
    virt: Cell<bool>,
    mask: Cell<u64>,
    shadow: Cell<u64>,
}

impl VcpuHw for Sim {
    fn owned(&self) -> bool {
        self.owned.get()
    }
    fn own(&self, own: bool) {
        self.owned.set(own);
        if !own {
            // vmx_recalc_msr_intercepts(): intercept until the guest's value is non-zero.
            self.intercept.set(self.hw.get() == 0);
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
        self.intercept.set(intercept)
    }
    fn set_virt(&self, enable: bool) {
        assert_eq!(
            self.backend(),
            Backend::VmxVirt,
            "the CPU has no such control"
        );
        self.virt.set(enable)
    }
    fn write_virt(&self, mask: u64, shadow: u64) {
        self.mask.set(mask);
        self.shadow.set(shadow);
    }
    fn read_shadow(&self) -> u64 {
        self.shadow.get()
    }
    fn sw_view(&self) -> u64 {
        self.sw_view.get()
    }
    fn set_sw_view(&self, value: u64) {
        self.sw_view.set(value)
    }
}

impl Sim {
    fn new(backend: Backend) -> Self {
        let s = Sim::default();
        s.backend.set(Some(backend));
        s.intercept.set(true);
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
                self.intercept.set(false);
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

    /// The guest runs one WRMSR (or RDMSR): VM entry, the access, VM exit.
    fn guest_access(&self, config: Config, write: Option<u64>) -> u64 {
        let mut msr = self.hw.get();
        let read;
        if self.intercept.get() {
            if let Some(x) = write {
                self.kvm_set(config, x);
            }
            read = self.kvm_get();
        } else {
            if let Some(x) = write {
                if self.virt.get() {
                    self.shadow.set(x);
                    msr = (msr & self.mask.get()) | (x & !self.mask.get());
                } else {
                    msr = x;
                }
            }
            read = if self.virt.get() {
                self.shadow.get()
            } else {
                msr
            };
            self.hw.set(msr);
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
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_entry_enforces(
        ops in proptest::collection::vec(op(), 1..60),
        intercept: bool,
    ) {
        let backend = if intercept { Backend::VmxIntercept } else { Backend::VmxVirt };
        let sim = Sim::new(backend);
        let mut config = Config::OFF;
        let mut guest = 0u64;
        for op in ops {
            match op {
                Op::GuestWrite(x) => {
                    sim.guest_access(config, Some(x));
                    guest = x;
                }
                Op::GuestRead => prop_assert_eq!(sim.guest_access(config, None), guest),
                Op::HostSet(x) => {
                    sim.kvm_set(config, x);
                    guest = x;
                }
                Op::HostGet => prop_assert_eq!(sim.kvm_get(), guest),
                Op::Reset => {
                    sim.hw.set(0); // vmx_vcpu_reset()
                    backend::reset(&sim, backend, config);
                    guest = 0;
                }
                Op::Configure(m, v) => {
                    config = Config::new(m, v).unwrap();
                    backend::apply(&sim, backend, config);
                }
            }
            // What the next VM entry loads into the hardware MSR.
            prop_assert_eq!(sim.hw.get(), config.effective(guest), "after {:?}", op);
            prop_assert_eq!(sim.owned.get(), config.is_active());
            if sim.owned.get() {
                // vmx-virt never exits for the MSR; the intercept backend always does.
                prop_assert_eq!(sim.intercept.get(), backend == Backend::VmxIntercept);
            }
        }
    }
}
