// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A vCPU's forcing: the operator's VM-wide configuration combined with what
//! the pool policy forces for the vCPU's own report. Pure.
//!
//! The rule: **the operator's explicit bits win**. Bits the operator's mask
//! covers keep the operator's value, whatever the guest reports (an operator
//! may force `BHI_DIS_S` off for a guest OS that suffers from it, and must
//! not be overridden by that guest); the report adds forced-on bits only
//! where the operator left the bit to the guest. A report bit the operator
//! forced off is a *conflict*, returned so that the VMM can log it.
//!
//! KVM's per-vCPU configuration replaces the VM-wide one entirely, so a vCPU
//! whose report adds nothing gets no configuration of its own
//! ([`VcpuForcing::FollowVm`]: `KVM_FORCE_SPEC_CTRL_CLEAR`), and follows the
//! operator's later VM-wide changes by itself; a vCPU with its own
//! configuration is recomputed by the VMM when the operator changes the
//! VM-wide one ([`combine`] again).

use crate::spec_ctrl::Config;

/// What a vCPU must be configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuForcing {
    /// No configuration of its own: the VM-wide one applies.
    FollowVm,
    /// This configuration, as the vCPU's own.
    Own(Config),
}

/// The combination, and the report bits the operator overrode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Combined {
    /// The vCPU's configuration.
    pub forcing: VcpuForcing,
    /// Bits the report needs on that the operator forced off.
    pub conflicts: u64,
}

/// Combine the operator's VM-wide `operator` with `report_forced`, the bits
/// the pool policy forces on this host for the vCPU's report.
pub fn combine(operator: Config, report_forced: u64) -> Combined {
    let extra = report_forced & !operator.mask();
    let conflicts = report_forced & operator.mask() & !operator.value();
    let forcing = if extra == 0 {
        VcpuForcing::FollowVm
    } else {
        // `extra` is outside the operator's mask and forced on in both, so
        // the value stays inside the mask.
        match Config::new(operator.mask() | extra, operator.value() | extra) {
            Some(c) => VcpuForcing::Own(c),
            None => VcpuForcing::FollowVm,
        }
    };
    Combined { forcing, conflicts }
}

/// What the vCPU runs with, given the VM-wide configuration.
pub fn effective_config(operator: Config, f: VcpuForcing) -> Config {
    match f {
        VcpuForcing::FollowVm => operator,
        VcpuForcing::Own(c) => c,
    }
}
