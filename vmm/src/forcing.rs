// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What each vCPU of a VM runs with: the operator's VM-wide configuration,
//! what the pool policy forces on this host for every guest
//! ([`crate::pool::Pool::default_policy`]), and what it forces for each
//! vCPU's own report through the virtual MSRs. Pure.
//!
//! The rules:
//!
//! - **The operator's explicit bits win.** Bits the operator's mask covers
//!   keep the operator's value whatever the policy or the guest's report
//!   wants (an operator may force `BHI_DIS_S` off for a guest OS that
//!   suffers from it); a bit the policy needs on that the operator forced
//!   off is a *conflict*, returned so that the VMM can log it.
//! - **Reports refine, never weaken**: a vCPU's report adds forced-on bits
//!   to the pool default, and takes none away.
//! - KVM's per-vCPU configuration *replaces* the VM-wide one, so a vCPU
//!   whose report adds nothing gets no configuration of its own and follows
//!   the VM-wide one; [`VmForcing`] turns every change into the per-vCPU
//!   actions that keep each vCPU on the right configuration.

use crate::config::{Config, ConfigError, SpecCtrl};
use crate::pool::HostModel;
use std::collections::BTreeMap;
use thiserror::Error;

/// What a vCPU must be configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VcpuForcing {
    /// No configuration of its own: the VM-wide one applies.
    FollowVm,
    /// This configuration, as the vCPU's own.
    Own(Config),
}

/// A combination, and the bits the operator overrode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Combined<T> {
    /// The result.
    pub forcing: T,
    /// Bits the policy needs on that the operator forced off.
    pub conflicts: SpecCtrl,
}

/// `base` with the bits of `on` forced on where `base` leaves them to the
/// guest; the bits of `on` that `base` forces off are conflicts.
fn add_on(base: Config, on: SpecCtrl) -> (Config, SpecCtrl, SpecCtrl) {
    let extra = on - base.mask();
    let conflicts = (on & base.mask()) - base.value();
    let mask = base.mask() | extra;
    let value = base.value() | extra;
    // `extra` is outside base's mask and on in both: value stays in mask.
    let c = Config::new(mask, value).unwrap_or(base);
    (c, extra, conflicts)
}

/// The VM-wide configuration: the operator's, plus `pool_forced` (the pool
/// policy's bits for this host) where the operator leaves a bit free.
pub fn vm_config(operator: Config, pool_forced: SpecCtrl) -> Combined<Config> {
    let (c, _, conflicts) = add_on(operator, pool_forced);
    Combined {
        forcing: c,
        conflicts,
    }
}

/// A vCPU's forcing, given the VM-wide configuration `vm` and
/// `report_forced`, the bits the pool policy forces for the vCPU's report.
pub fn combine(vm: Config, report_forced: SpecCtrl) -> Combined<VcpuForcing> {
    let (c, extra, conflicts) = add_on(vm, report_forced);
    let forcing = if extra.is_empty() {
        VcpuForcing::FollowVm
    } else {
        VcpuForcing::Own(c)
    };
    Combined { forcing, conflicts }
}

/// What the vCPU runs with, given the VM-wide configuration.
pub fn effective_config(vm: Config, f: VcpuForcing) -> Config {
    match f {
        VcpuForcing::FollowVm => vm,
        VcpuForcing::Own(c) => c,
    }
}

/// One step for the VMM to run, in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// `VmFdExt::set_force_spec_ctrl(config)`.
    SetVm(Config),
    /// `VcpuFdExt::set_force_spec_ctrl(config)` on vCPU `vcpu` (on its
    /// thread, or with it kicked out of `KVM_RUN`).
    SetVcpu {
        /// The vCPU's id.
        vcpu: u32,
        /// Its own configuration.
        config: Config,
    },
    /// `VcpuFdExt::clear_force_spec_ctrl()` on vCPU `vcpu`.
    ClearVcpu {
        /// The vCPU's id.
        vcpu: u32,
    },
}

/// Why [`VmForcing`] refused a change; its state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ForcingError {
    /// No vCPU with this id was added.
    #[error("vCPU {0} was never added to the VM's forcing state (VmForcing::add_vcpu)")]
    NoSuchVcpu(u32),
    /// The operator's configuration or the pool default holds bits this
    /// host cannot force.
    #[error(transparent)]
    Unsupported(#[from] ConfigError),
}

/// The forcing state of a VM on one host: the operator's configuration,
/// the host's facts and the pool policy's default for it, and each vCPU's
/// report (`MSR_VIRTUAL_MITIGATION_CTRL` bits).
///
/// Every change returns the [`Action`]s that bring KVM to the new state, in
/// an order that never leaves a vCPU running with less than both the old
/// and the new state force on it: vCPUs that get (or keep) a configuration
/// of their own are set before the VM-wide change, vCPUs that go back to
/// following the VM are cleared after it. Run them in order, each to
/// completion, while holding whatever lock guards this state; a vCPU's
/// actions may run on its own thread. If one fails, KVM and this state
/// disagree: [`VmForcing::resync`] gives the actions that set everything
/// again.
///
/// # Invariants
///
/// For every vCPU, `applied` is what the returned actions, once run, leave
/// in KVM: `combine(vm_config, host.forcing(report)).forcing`; the
/// operator's mask and the pool default are within `host.supported`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmForcing {
    operator: Config,
    host: HostModel,
    pool_forced: SpecCtrl,
    vcpus: BTreeMap<u32, VcpuState>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VcpuState {
    report: u64,
    applied: VcpuForcing,
}

fn check(operator: Config, host: &HostModel, pool_forced: SpecCtrl) -> Result<(), ConfigError> {
    operator.check_supported(host.supported)?;
    Config::force_on(pool_forced).check_supported(host.supported)?;
    Ok(())
}

impl VmForcing {
    /// A VM without vCPUs on `host`, where the pool policy forces
    /// `pool_forced` for every guest, and the action to run before the
    /// first `KVM_RUN`.
    pub fn new(
        operator: Config,
        host: HostModel,
        pool_forced: SpecCtrl,
    ) -> Result<(VmForcing, Vec<Action>), ForcingError> {
        check(operator, &host, pool_forced)?;
        // INVARIANT: checked just above; no vCPUs yet.
        let f = VmForcing {
            operator,
            host,
            pool_forced,
            vcpus: BTreeMap::new(),
        };
        let actions = vec![Action::SetVm(f.vm_config())];
        Ok((f, actions))
    }

    /// The VM-wide configuration KVM has.
    pub fn vm_config(&self) -> Config {
        vm_config(self.operator, self.pool_forced).forcing
    }

    /// Bits the pool default needs that the operator forces off.
    pub fn conflicts(&self) -> SpecCtrl {
        vm_config(self.operator, self.pool_forced).conflicts
    }

    /// Bits vCPU `vcpu`'s report needs that the operator forces off.
    pub fn report_conflicts(&self, vcpu: u32) -> Result<SpecCtrl, ForcingError> {
        let v = self
            .vcpus
            .get(&vcpu)
            .ok_or(ForcingError::NoSuchVcpu(vcpu))?;
        Ok(combine(self.vm_config(), self.host.forcing(v.report).forced).conflicts)
    }

    /// What vCPU `vcpu` runs with.
    pub fn vcpu_config(&self, vcpu: u32) -> Result<Config, ForcingError> {
        let v = self
            .vcpus
            .get(&vcpu)
            .ok_or(ForcingError::NoSuchVcpu(vcpu))?;
        Ok(effective_config(self.vm_config(), v.applied))
    }

    /// vCPU `vcpu`'s own configuration in KVM, if it has one.
    pub fn vcpu_forcing(&self, vcpu: u32) -> Result<VcpuForcing, ForcingError> {
        let v = self
            .vcpus
            .get(&vcpu)
            .ok_or(ForcingError::NoSuchVcpu(vcpu))?;
        Ok(v.applied)
    }

    /// A vCPU created (or created again: QEMU and others park a vCPU's fd
    /// on unplug and reuse it, and KVM keeps its configuration), with no
    /// report: it follows the VM-wide configuration.
    pub fn add_vcpu(&mut self, vcpu: u32) -> Vec<Action> {
        // INVARIANT: a fresh vCPU follows the VM once ClearVcpu ran.
        self.vcpus.insert(
            vcpu,
            VcpuState {
                report: 0,
                applied: VcpuForcing::FollowVm,
            },
        );
        vec![Action::ClearVcpu { vcpu }]
    }

    /// A vCPU removed.
    pub fn remove_vcpu(&mut self, vcpu: u32) -> Result<(), ForcingError> {
        self.vcpus
            .remove(&vcpu)
            .map(|_| ())
            .ok_or(ForcingError::NoSuchVcpu(vcpu))
    }

    /// vCPU `vcpu` reported `report` (`MSR_VIRTUAL_MITIGATION_CTRL` bits,
    /// [`crate::msr::WriteEffect::Report`]).
    pub fn set_report(&mut self, vcpu: u32, report: u64) -> Result<Vec<Action>, ForcingError> {
        let v = self
            .vcpus
            .get_mut(&vcpu)
            .ok_or(ForcingError::NoSuchVcpu(vcpu))?;
        v.report = report;
        Ok(self.sync(None))
    }

    /// The operator's VM-wide configuration changed.
    pub fn set_operator(&mut self, operator: Config) -> Result<Vec<Action>, ForcingError> {
        check(operator, &self.host, self.pool_forced)?;
        let old = self.vm_config();
        self.operator = operator;
        Ok(self.sync(Some(old)))
    }

    /// The VM runs on another host now (a migration's destination), or the
    /// pool changed: every vCPU's forcing is recomputed from its report in
    /// one step.
    pub fn set_host(
        &mut self,
        host: HostModel,
        pool_forced: SpecCtrl,
    ) -> Result<Vec<Action>, ForcingError> {
        check(self.operator, &host, pool_forced)?;
        let old = self.vm_config();
        self.host = host;
        self.pool_forced = pool_forced;
        Ok(self.sync(Some(old)))
    }

    /// The actions that set the VM-wide configuration and every vCPU's
    /// again, whatever KVM has (after an action failed).
    pub fn resync(&mut self) -> Vec<Action> {
        let vm = self.vm_config();
        let mut actions = vec![Action::SetVm(vm)];
        for (&vcpu, v) in self.vcpus.iter_mut() {
            let want = combine(vm, self.host.forcing(v.report).forced).forcing;
            actions.push(match want {
                VcpuForcing::Own(config) => Action::SetVcpu { vcpu, config },
                VcpuForcing::FollowVm => Action::ClearVcpu { vcpu },
            });
            // INVARIANT: the actions set every vCPU to `want`.
            v.applied = want;
        }
        actions
    }

    /// The actions from the applied state to the wanted one; `old_vm` is
    /// the VM-wide configuration before a change of it.
    fn sync(&mut self, old_vm: Option<Config>) -> Vec<Action> {
        let vm = self.vm_config();
        let mut before = Vec::new();
        let mut after = Vec::new();
        for (&vcpu, v) in self.vcpus.iter_mut() {
            let want = combine(vm, self.host.forcing(v.report).forced).forcing;
            match want {
                VcpuForcing::Own(config) if v.applied != want => {
                    before.push(Action::SetVcpu { vcpu, config })
                }
                VcpuForcing::FollowVm if v.applied != want => {
                    after.push(Action::ClearVcpu { vcpu })
                }
                _ => {}
            }
            // INVARIANT: the actions returned bring KVM to `want`.
            v.applied = want;
        }
        if old_vm.is_some_and(|old| old != vm) {
            before.push(Action::SetVm(vm));
        }
        before.extend(after);
        before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::cpuid_7_2_edx as edx;
    use proptest::prelude::*;

    /// KVM as the actions leave it: the VM-wide configuration and each
    /// vCPU's own one.
    #[derive(Default)]
    struct Kvm {
        vm: Config,
        own: BTreeMap<u32, Config>,
    }

    impl Kvm {
        fn run(&mut self, actions: &[Action]) {
            for a in actions {
                match *a {
                    Action::SetVm(c) => self.vm = c,
                    Action::SetVcpu { vcpu, config } => {
                        self.own.insert(vcpu, config);
                    }
                    Action::ClearVcpu { vcpu } => {
                        self.own.remove(&vcpu);
                    }
                }
            }
        }
        fn of(&self, vcpu: u32) -> Config {
            self.own.get(&vcpu).copied().unwrap_or(self.vm)
        }
    }

    /// A host with every control, whose needs for a report depend on
    /// `arch_capabilities` (RRSBA, BHI_NO).
    fn host(arch_capabilities: u64) -> HostModel {
        HostModel {
            name: "h".into(),
            arch_capabilities,
            cpuid_7_2_edx: edx::PSFD
                | edx::IPRED_CTRL
                | edx::RRSBA_CTRL
                | edx::DDPD_U
                | edx::BHI_CTRL,
            supported: SpecCtrl::all(),
            source: None,
            microcode: None,
            family_model: None,
        }
    }

    fn spec() -> impl Strategy<Value = SpecCtrl> {
        any::<u64>().prop_map(SpecCtrl::from_bits_truncate)
    }

    fn config() -> impl Strategy<Value = Config> {
        (spec(), spec()).prop_map(|(m, v)| Config::new(m, v & m).unwrap())
    }

    fn arch() -> impl Strategy<Value = u64> {
        use crate::msr::arch_cap;
        prop_oneof![
            Just(0),
            Just(arch_cap::RRSBA),
            Just(arch_cap::BHI_NO),
            Just(arch_cap::RRSBA | arch_cap::BHI_NO)
        ]
    }

    #[derive(Clone, Debug)]
    enum Op {
        Operator(Config),
        Host(u64, SpecCtrl),
        Report(u32, u64),
        Resync,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            config().prop_map(Op::Operator),
            (arch(), spec()).prop_map(|(a, s)| Op::Host(a, s)),
            (0u32..4, 0u64..4).prop_map(|(v, r)| Op::Report(v, r)),
            Just(Op::Resync),
        ]
    }

    proptest! {
        /// After any sequence of changes, each vCPU runs with exactly the
        /// operator's bits, plus the pool's and its report's where the
        /// operator leaves them free; and during the actions of one change
        /// no vCPU ever runs with a bit forced on in both the old and the
        /// new state missing.
        #[test]
        fn no_vcpu_left_stale(operator in config(), a in arch(), pool in spec(), ops in proptest::collection::vec(op(), 0..12)) {
            let (mut f, first) = VmForcing::new(operator, host(a), pool).unwrap();
            let mut kvm = Kvm::default();
            kvm.run(&first);
            let mut reports = BTreeMap::new();
            for v in 0..4 {
                kvm.run(&f.add_vcpu(v));
                reports.insert(v, 0u64);
            }
            for op in ops {
                let old: Vec<Config> = (0..4).map(|v| kvm.of(v)).collect();
                let actions = match op {
                    Op::Operator(c) => f.set_operator(c).unwrap(),
                    Op::Host(a, p) => f.set_host(host(a), p).unwrap(),
                    Op::Report(v, r) => {
                        reports.insert(v, r);
                        f.set_report(v, r).unwrap()
                    }
                    Op::Resync => f.resync(),
                };
                let new: Vec<Config> = (0..4).map(|v| f.vcpu_config(v).unwrap()).collect();
                for a in &actions {
                    kvm.run(std::slice::from_ref(a));
                    for v in 0..4u32 {
                        let (o, n, now) = (old[v as usize], new[v as usize], kvm.of(v));
                        let missing = (o.value() & n.value()) - now.value();
                        prop_assert!(missing.is_empty(), "vCPU {} ran {:?} between {:?} and {:?}", v, now, o, n);
                    }
                }
                for v in 0..4u32 {
                    let want_vm = vm_config(f.operator, f.pool_forced).forcing;
                    let extra = f.host.forcing(reports[&v]).forced - want_vm.mask();
                    let want = Config::new(want_vm.mask() | extra, want_vm.value() | extra).unwrap();
                    prop_assert_eq!(kvm.of(v), want);
                    prop_assert_eq!(f.vcpu_config(v).unwrap(), want);
                }
            }
        }
    }

    #[test]
    fn operator_wins_and_conflicts_are_reported() {
        let operator = Config::new(SpecCtrl::BHI_DIS_S, SpecCtrl::empty()).unwrap();
        let (f, _) = VmForcing::new(
            operator,
            host(0),
            SpecCtrl::BHI_DIS_S | SpecCtrl::RRSBA_DIS_S,
        )
        .unwrap();
        assert_eq!(f.conflicts(), SpecCtrl::BHI_DIS_S);
        assert_eq!(f.vm_config().value(), SpecCtrl::RRSBA_DIS_S);
        assert_eq!(
            f.vm_config().mask(),
            SpecCtrl::BHI_DIS_S | SpecCtrl::RRSBA_DIS_S
        );
    }

    #[test]
    fn refused_changes_change_nothing() {
        let (mut f, _) = VmForcing::new(Config::OFF, host(0), SpecCtrl::empty()).unwrap();
        assert_eq!(f.set_report(3, 1), Err(ForcingError::NoSuchVcpu(3)));
        assert_eq!(f.remove_vcpu(3), Err(ForcingError::NoSuchVcpu(3)));
        let weak = HostModel {
            supported: SpecCtrl::IBRS,
            ..host(0)
        };
        let before = f.clone();
        assert!(matches!(
            f.set_host(weak.clone(), SpecCtrl::BHI_DIS_S),
            Err(ForcingError::Unsupported(_))
        ));
        assert_eq!(f, before);
        assert!(VmForcing::new(Config::force_on(SpecCtrl::SSBD), weak, SpecCtrl::empty()).is_err());
    }

    /// The reviewer's case: the pool default moves into the report's
    /// forcing on another host; one step, nothing dropped in between.
    #[test]
    fn host_change_in_one_step() {
        use crate::msr::arch_cap;
        let (mut f, _) = VmForcing::new(Config::OFF, host(0), SpecCtrl::RRSBA_DIS_S).unwrap();
        f.add_vcpu(0);
        let a = f.set_report(0, 1).unwrap();
        assert_eq!(a.len(), 1);
        let a = f
            .set_host(host(arch_cap::RRSBA), SpecCtrl::empty())
            .unwrap();
        // Before: VM RRSBA_DIS_S, the vCPU's own RRSBA_DIS_S|BHI_DIS_S (its
        // report of the BHB sequence). After: VM nothing, the vCPU's own
        // BHI_DIS_S. Its own is set first, then the VM-wide change.
        assert!(matches!(a.first(), Some(Action::SetVcpu { vcpu: 0, .. })));
        assert!(matches!(a.last(), Some(Action::SetVm(_))));
    }
}
