// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Intel's virtual mitigation MSRs (the RFC "virtual IA32_SPEC_CTRL" series,
//! patches 04-10), emulated by the VMM for one vCPU. Pure: the VMM feeds it
//! the guest's accesses from `KVM_EXIT_X86_RDMSR`/`WRMSR` exits and applies
//! what it returns.
//!
//! - `IA32_ARCH_CAPABILITIES` (0x10a) bit 63 `VIRTUAL_ENUM`: the virtual
//!   MSRs exist. KVM refuses bit 63 through `KVM_SET_MSRS`, so the VMM also
//!   filters the guest's *read* of 0x10a and answers it here: KVM's value
//!   for the vCPU plus bit 63.
//! - `MSR_VIRTUAL_ENUMERATION` (0x5000_0000) bit 0 `MITIGATION_CTRL_SUPPORT`.
//! - `MSR_VIRTUAL_MITIGATION_ENUM` (0x5000_0001): which software mitigations
//!   the guest may report (bit 0 short BHB-clearing sequence, bit 1
//!   retpoline). Written by the host only.
//! - `MSR_VIRTUAL_MITIGATION_CTRL` (0x5000_0002): what the guest reports
//!   using (bit 0, bit 1); 0 at reset; a write of a bit that is not
//!   enumerated takes #GP.
//!
//! Guest writes of the enumeration MSRs take #GP; every access to the
//! 0x5000_000x MSRs takes #GP when nothing is advertised (the MSRs do not
//! exist then).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `IA32_ARCH_CAPABILITIES`.
pub const MSR_IA32_ARCH_CAPABILITIES: u32 = 0x10a;
/// `MSR_VIRTUAL_ENUMERATION`.
pub const MSR_VIRTUAL_ENUMERATION: u32 = 0x5000_0000;
/// `MSR_VIRTUAL_MITIGATION_ENUM`.
pub const MSR_VIRTUAL_MITIGATION_ENUM: u32 = 0x5000_0001;
/// `MSR_VIRTUAL_MITIGATION_CTRL`.
pub const MSR_VIRTUAL_MITIGATION_CTRL: u32 = 0x5000_0002;

/// Bits of `IA32_ARCH_CAPABILITIES` the project reads or sets.
pub mod arch_cap {
    /// Enhanced IBRS: IBRS set once protects until cleared (bit 1).
    pub const IBRS_ALL: u64 = 1 << 1;
    /// RSB Alternate: on RSB underflow, RET may be predicted from the BTB
    /// (bit 2; Skylake-family parts), which retpoline does not cover.
    pub const RSBA: u64 = 1 << 2;
    /// RSB underflow may fall back to alternate predictors (retpoline is
    /// then not a complete mitigation).
    pub const RRSBA: u64 = 1 << 19;
    /// Not affected by Branch History Injection.
    pub const BHI_NO: u64 = 1 << 20;
    /// The virtual mitigation MSRs exist.
    pub const VIRTUAL_ENUM: u64 = 1 << 63;
    /// The bits the pool policy decides by: the same on a host and in what
    /// KVM offers its guests (KVM passes them through; it sets some other
    /// bits itself).
    pub const POLICY: u64 = IBRS_ALL | RSBA | RRSBA | BHI_NO;
}

/// `MSR_VIRTUAL_ENUMERATION` bit 0.
pub const MITIGATION_CTRL_SUPPORT: u64 = 1 << 0;

/// The software mitigations a guest can report, as bits of both
/// `MSR_VIRTUAL_MITIGATION_ENUM` (`*_SUPPORT`) and
/// `MSR_VIRTUAL_MITIGATION_CTRL` (`*_USED`), which share the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Mitigation {
    /// The short BHB-clearing sequence in supervisor mode (bit 0).
    BhbClearSeqS,
    /// Retpoline in supervisor mode (bit 1).
    RetpolineS,
}

impl Mitigation {
    /// Every mitigation, in bit order.
    pub const ALL: [Mitigation; 2] = [Mitigation::BhbClearSeqS, Mitigation::RetpolineS];

    /// Its bit in `MSR_VIRTUAL_MITIGATION_ENUM`/`_CTRL`.
    pub const fn bit(self) -> u64 {
        match self {
            Mitigation::BhbClearSeqS => 1 << 0,
            Mitigation::RetpolineS => 1 << 1,
        }
    }

    /// The name used in tables and files.
    pub const fn name(self) -> &'static str {
        match self {
            Mitigation::BhbClearSeqS => "bhb-clear-seq-s",
            Mitigation::RetpolineS => "retpoline-s",
        }
    }
}

/// The union of [`Mitigation::bit`]: every other bit of the two MSRs is
/// reserved.
pub const MITIGATION_BITS: u64 = {
    let mut all = 0;
    let mut i = 0;
    while i < Mitigation::ALL.len() {
        all |= Mitigation::ALL[i].bit();
        i += 1;
    }
    all
};

/// The mitigations in a set of `MSR_VIRTUAL_MITIGATION_*` bits.
pub fn mitigations(bits: u64) -> impl Iterator<Item = Mitigation> {
    Mitigation::ALL
        .into_iter()
        .filter(move |m| bits & m.bit() != 0)
}

/// A guest access the VMM must refuse: inject #GP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Fault {
    /// The MSR is not one of the emulated ones, or does not exist for this
    /// guest (nothing advertised).
    #[error("MSR {0:#x} is not emulated for this guest")]
    NoSuchMsr(u32),
    /// A write to an MSR the guest may only read.
    #[error("MSR {0:#x} is read-only")]
    ReadOnly(u32),
    /// A write of bits that are reserved or not enumerated.
    #[error("MSR {msr:#x}: bits {bits:#x} are reserved")]
    Reserved {
        /// The MSR.
        msr: u32,
        /// The offending bits.
        bits: u64,
    },
}

/// What a guest write changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteEffect {
    /// The guest's report changed to these `MSR_VIRTUAL_MITIGATION_CTRL`
    /// bits: the VMM recomputes the vCPU's forcing at once.
    Report(u64),
    /// Nothing the VMM acts on changed.
    None,
}

/// What this VM is told about the virtual MSRs (the same on every host of
/// its migration pool; see [`crate::pool::Decision::advertised`]).
///
/// # Invariants
///
/// `mitigations` holds only bits of [`MITIGATION_BITS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Advertised {
    mitigations: u64,
}

/// Bits of `MSR_VIRTUAL_MITIGATION_ENUM` that name no mitigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("MSR_VIRTUAL_MITIGATION_ENUM bits {0:#x} name no mitigation (known: {MITIGATION_BITS:#x})")]
pub struct UnknownMitigations(pub u64);

impl Advertised {
    /// Nothing advertised: the virtual MSRs do not exist for the guest.
    pub const NONE: Advertised = Advertised { mitigations: 0 };

    /// Advertise `mitigations` (`MSR_VIRTUAL_MITIGATION_ENUM` bits).
    pub const fn new(mitigations: u64) -> Result<Advertised, UnknownMitigations> {
        if mitigations & !MITIGATION_BITS != 0 {
            return Err(UnknownMitigations(mitigations & !MITIGATION_BITS));
        }
        // INVARIANT: checked just above.
        Ok(Advertised { mitigations })
    }

    /// `MSR_VIRTUAL_MITIGATION_ENUM`: the mitigations the guest may report.
    pub const fn mitigations(&self) -> u64 {
        self.mitigations
    }

    /// Whether the virtual MSRs exist for the guest at all.
    pub const fn any(&self) -> bool {
        self.mitigations != 0
    }
}

/// The emulated MSRs that the VMM filters, as `(first MSR, count, read,
/// write)`: the ranges to deny in `KVM_X86_SET_MSR_FILTER`, so that those
/// accesses exit to userspace.
pub(crate) const FILTERED: [(u32, u32, bool, bool); 2] = [
    // Only the read: KVM's own handling of a guest write (#GP) is kept.
    (MSR_IA32_ARCH_CAPABILITIES, 1, true, false),
    (MSR_VIRTUAL_ENUMERATION, 3, true, true),
];

/// The state of one vCPU's virtual MSRs that migrates with it: the guest's
/// report, and what the guest was told (the advertisement and
/// IA32_ARCH_CAPABILITIES), so that a destination telling it anything else
/// refuses the state instead of changing the guest's CPU under it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VcpuMsrState {
    /// The format of this state, [`VcpuMsrState::VERSION`]; a state of
    /// another version is refused.
    pub version: u32,
    /// `MSR_VIRTUAL_MITIGATION_CTRL`.
    pub mitigation_ctrl: u64,
    /// `MSR_VIRTUAL_MITIGATION_ENUM` as advertised to the guest.
    pub advertised: u64,
    /// IA32_ARCH_CAPABILITIES as the guest reads it, bit 63 included.
    pub arch_capabilities: u64,
}

impl VcpuMsrState {
    /// The format [`VcpuMsrs::save`] writes and [`VcpuMsrs::restore`] takes.
    /// Version 1 added the advertisement and IA32_ARCH_CAPABILITIES (crate
    /// 0.1.0's state had only `mitigation_ctrl` and no version).
    pub const VERSION: u32 = 1;
}

/// Why a saved state cannot be restored; the destination's vCPU is left as
/// it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A state of a format this crate does not know.
    #[error("saved virtual-MSR state of version {0}, this VMM reads version {v}", v = VcpuMsrState::VERSION)]
    Version(u32),
    /// The source advertised other mitigations than this destination.
    #[error("the guest was told MSR_VIRTUAL_MITIGATION_ENUM={source_adv:#x}, this host advertises {here:#x}: give every host of the pool the same decision (kfsc-policy table)")]
    AdvertisementChanged {
        /// What the source advertised.
        source_adv: u64,
        /// What this destination advertises.
        here: u64,
    },
    /// The guest read another IA32_ARCH_CAPABILITIES on the source.
    #[error("the guest read IA32_ARCH_CAPABILITIES={source_value:#x}, this host's CPU model gives {here:#x}: use one CPU model (template) on every host of the pool")]
    ArchCapabilitiesChanged {
        /// What the guest read on the source.
        source_value: u64,
        /// What it would read here.
        here: u64,
    },
    /// The report holds mitigations that are not advertised.
    #[error("reported mitigations {0:#x} are not advertised")]
    NotAdvertised(u64),
}

/// One vCPU's virtual MSRs.
///
/// # Invariants
///
/// `state.mitigation_ctrl & !adv.mitigations == 0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuMsrs {
    adv: Advertised,
    /// KVM's `IA32_ARCH_CAPABILITIES` for the vCPU, without bit 63.
    arch_capabilities: u64,
    state: Report,
}

/// The guest's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Report {
    mitigation_ctrl: u64,
}

impl VcpuMsrs {
    /// A vCPU at reset. `arch_capabilities` is IA32_ARCH_CAPABILITIES of the
    /// VMM's *final* CPU model for the vCPU (after its CPU template or
    /// profile; e.g. `VcpuFdExt::arch_capabilities` once the VMM has set
    /// it), which the guest would read without the virtual MSRs. On a
    /// migration's destination, that is the destination's own model, not
    /// the value in the snapshot: [`VcpuMsrs::restore`] compares the two.
    pub fn new(adv: Advertised, arch_capabilities: u64) -> Self {
        // INVARIANT: the state starts at 0, and `adv` holds only known bits.
        VcpuMsrs {
            adv,
            arch_capabilities: arch_capabilities & !arch_cap::VIRTUAL_ENUM,
            state: Report::default(),
        }
    }

    /// RESET or INIT: `MSR_VIRTUAL_MITIGATION_CTRL` is 0 again.
    pub fn reset(&mut self) -> WriteEffect {
        let had = self.state.mitigation_ctrl;
        self.state = Report::default();
        if had != 0 {
            WriteEffect::Report(0)
        } else {
            WriteEffect::None
        }
    }

    /// What the guest reports using.
    pub const fn report(&self) -> u64 {
        self.state.mitigation_ctrl
    }

    /// A guest RDMSR of `msr`.
    pub fn read(&self, msr: u32) -> Result<u64, Fault> {
        let exists = self.adv.any();
        match msr {
            MSR_IA32_ARCH_CAPABILITIES if exists => {
                Ok(self.arch_capabilities | arch_cap::VIRTUAL_ENUM)
            }
            MSR_IA32_ARCH_CAPABILITIES => Ok(self.arch_capabilities),
            MSR_VIRTUAL_ENUMERATION if exists => Ok(MITIGATION_CTRL_SUPPORT),
            MSR_VIRTUAL_MITIGATION_ENUM if exists => Ok(self.adv.mitigations),
            MSR_VIRTUAL_MITIGATION_CTRL if exists => Ok(self.state.mitigation_ctrl),
            _ => Err(Fault::NoSuchMsr(msr)),
        }
    }

    /// A guest WRMSR of `msr`.
    pub fn write(&mut self, msr: u32, value: u64) -> Result<WriteEffect, Fault> {
        match msr {
            MSR_VIRTUAL_MITIGATION_CTRL if self.adv.any() => {
                let reserved = value & !self.adv.mitigations;
                if reserved != 0 {
                    return Err(Fault::Reserved {
                        msr,
                        bits: reserved,
                    });
                }
                let changed = value != self.state.mitigation_ctrl;
                // INVARIANT: no bit outside the advertised ones.
                self.state.mitigation_ctrl = value;
                Ok(if changed {
                    WriteEffect::Report(value)
                } else {
                    WriteEffect::None
                })
            }
            MSR_IA32_ARCH_CAPABILITIES => Err(Fault::ReadOnly(msr)),
            MSR_VIRTUAL_ENUMERATION | MSR_VIRTUAL_MITIGATION_ENUM if self.adv.any() => {
                Err(Fault::ReadOnly(msr))
            }
            _ => Err(Fault::NoSuchMsr(msr)),
        }
    }

    /// The VMM changed its CPU model's IA32_ARCH_CAPABILITIES (a template
    /// applied after the vCPU was created).
    pub fn set_arch_capabilities(&mut self, arch_capabilities: u64) {
        self.arch_capabilities = arch_capabilities & !arch_cap::VIRTUAL_ENUM;
    }

    /// IA32_ARCH_CAPABILITIES as the guest reads it.
    pub fn guest_arch_capabilities(&self) -> u64 {
        match self.read(MSR_IA32_ARCH_CAPABILITIES) {
            Ok(v) => v,
            Err(_) => self.arch_capabilities,
        }
    }

    /// The state to migrate.
    pub fn save(&self) -> VcpuMsrState {
        VcpuMsrState {
            version: VcpuMsrState::VERSION,
            mitigation_ctrl: self.state.mitigation_ctrl,
            advertised: self.adv.mitigations,
            arch_capabilities: self.guest_arch_capabilities(),
        }
    }

    /// Take a migrated state; on error nothing changes.
    pub fn restore(&mut self, state: VcpuMsrState) -> Result<WriteEffect, RestoreError> {
        if state.version != VcpuMsrState::VERSION {
            return Err(RestoreError::Version(state.version));
        }
        if state.advertised != self.adv.mitigations {
            return Err(RestoreError::AdvertisementChanged {
                source_adv: state.advertised,
                here: self.adv.mitigations,
            });
        }
        let here = self.guest_arch_capabilities();
        if state.arch_capabilities != here {
            return Err(RestoreError::ArchCapabilitiesChanged {
                source_value: state.arch_capabilities,
                here,
            });
        }
        let extra = state.mitigation_ctrl & !self.adv.mitigations;
        if extra != 0 {
            return Err(RestoreError::NotAdvertised(extra));
        }
        // INVARIANT: checked just above.
        self.state.mitigation_ctrl = state.mitigation_ctrl;
        Ok(WriteEffect::Report(state.mitigation_ctrl))
    }
}
