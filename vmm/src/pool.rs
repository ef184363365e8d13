// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The migration-pool policy, pure: from the CPU facts of every host model a
//! guest may run on, which virtual-MSR support to advertise, and which
//! IA32_SPEC_CTRL bits each host forces for each report, so that a software
//! mitigation the guest reports stays effective on every host.
//!
//! Intel's guidance (Branch History Injection and Intra-mode BTI; Retpoline:
//! A Branch Target Injection Mitigation; RRSBA), per host:
//!
//! - The short BHB-clearing sequence mitigates BHI only on parts without
//!   `BHI_CTRL` (`CPUID.(EAX=7,ECX=2):EDX[4]`). A host that has `BHI_CTRL` and
//!   is not `BHI_NO` (`IA32_ARCH_CAPABILITIES[20]`) needs `BHI_DIS_S` for a
//!   guest that uses it. A host with `BHI_NO` needs nothing.
//! - Retpoline is complete only where RSB underflow does not fall back to
//!   alternate predictors. A host with `RRSBA` (`IA32_ARCH_CAPABILITIES[19]`)
//!   needs `RRSBA_DIS_S` for a guest that uses it; if it lacks `RRSBA_CTRL`
//!   (`CPUID.(EAX=7,ECX=2):EDX[2]`) the bit does not exist there and the
//!   guest's retpoline cannot be made complete: the table says so.
//!
//! The decision for the pool:
//!
//! - **Advertise** a mitigation (`MSR_VIRTUAL_MITIGATION_ENUM`) iff at least
//!   one host of the pool needs something for it: the guest enumerates once,
//!   at boot, wherever it boots, so the enumeration is the pool's, the same
//!   on every host (and migration-stable). Adding a host can only add to it.
//! - **Force**, on each host, for a guest's report, the bits *that host*
//!   needs for the reported mitigations. The destination of a migration
//!   recomputes from the migrated report, so each host forces exactly what
//!   it needs; bits are never forced where they do nothing (they can cost a
//!   lot, e.g. `BHI_DIS_S` on some guest OSes).
//! - A host that needs a bit it cannot force (not in its
//!   `KVM_GET_SUPPORTED_FORCE_SPEC_CTRL`, or the control does not exist
//!   there) leaves the mitigation **unprotected** on that host: the table
//!   shows it, and the operator should not migrate such guests there.

use crate::config::SpecCtrl;
use crate::msr::{arch_cap, mitigations, Advertised, Mitigation, MITIGATION_BITS};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// CPUID.(EAX=7,ECX=2):EDX bits the policy reads.
pub mod cpuid_7_2_edx {
    /// `IA32_SPEC_CTRL.PSFD` exists.
    pub const PSFD: u32 = 1 << 0;
    /// `IA32_SPEC_CTRL.IPRED_DIS_U/S` exist.
    pub const IPRED_CTRL: u32 = 1 << 1;
    /// `IA32_SPEC_CTRL.RRSBA_DIS_U/S` exist.
    pub const RRSBA_CTRL: u32 = 1 << 2;
    /// `IA32_SPEC_CTRL.DDPD_U` exists.
    pub const DDPD_U: u32 = 1 << 3;
    /// `IA32_SPEC_CTRL.BHI_DIS_S` exists.
    pub const BHI_CTRL: u32 = 1 << 4;
    /// The bits the pool policy decides by (KVM may leave others out).
    pub const POLICY: u32 = PSFD | IPRED_CTRL | RRSBA_CTRL | DDPD_U | BHI_CTRL;
}

/// The IA32_SPEC_CTRL bits a CPU with this CPUID.(EAX=7,ECX=2):EDX has:
/// IBRS, STIBP and SSBD (every part the pools hold enumerates them in
/// CPUID.(EAX=7,ECX=0):EDX), and each bit whose control EDX enumerates.
/// Intel SDM vol. 4, table 2-2, MSR 48H; the same rule as Xen's
/// `msr_spec_ctrl_valid_bits()`.
pub fn enumerated_spec_ctrl(cpuid_7_2_edx: u32) -> SpecCtrl {
    let mut s = SpecCtrl::IBRS | SpecCtrl::STIBP | SpecCtrl::SSBD;
    for (feature, bits) in [
        (cpuid_7_2_edx::PSFD, SpecCtrl::PSFD),
        (
            cpuid_7_2_edx::IPRED_CTRL,
            SpecCtrl::IPRED_DIS_U | SpecCtrl::IPRED_DIS_S,
        ),
        (
            cpuid_7_2_edx::RRSBA_CTRL,
            SpecCtrl::RRSBA_DIS_U | SpecCtrl::RRSBA_DIS_S,
        ),
        (cpuid_7_2_edx::DDPD_U, SpecCtrl::DDPD_U),
        (cpuid_7_2_edx::BHI_CTRL, SpecCtrl::BHI_DIS_S),
    ] {
        if cpuid_7_2_edx & feature != 0 {
            s |= bits;
        }
    }
    s
}

/// What the policy needs to know of one host model (one CPU model and
/// kernel configuration of a migration pool).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawHostModel")]
pub struct HostModel {
    /// A name for the model, unique in a pool.
    pub name: String,
    /// IA32_ARCH_CAPABILITIES of the host.
    pub arch_capabilities: u64,
    /// CPUID.(EAX=7,ECX=2):EDX of the host.
    pub cpuid_7_2_edx: u32,
    /// KVM_GET_SUPPORTED_FORCE_SPEC_CTRL on the host: the bits it can force
    /// (0 without the module). A subset of what its CPUID enumerates
    /// ([`enumerated_spec_ctrl`]).
    pub supported: SpecCtrl,
    /// Where the facts come from (e.g. "kfsc-policy facts on host X",
    /// or a public source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The microcode era the facts hold for (RRSBA, for one, came with
    /// microcode updates on some parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microcode: Option<String>,
    /// Display family and model (CPUID.1:EAX), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_model: Option<[u8; 2]>,
}

/// A host file as written, checked into a [`HostModel`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostModel {
    name: String,
    arch_capabilities: u64,
    cpuid_7_2_edx: u32,
    supported: SpecCtrl,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    microcode: Option<String>,
    #[serde(default)]
    family_model: Option<[u8; 2]>,
}

impl TryFrom<RawHostModel> for HostModel {
    type Error = PoolError;
    fn try_from(r: RawHostModel) -> Result<HostModel, PoolError> {
        let h = HostModel {
            name: r.name,
            arch_capabilities: r.arch_capabilities,
            cpuid_7_2_edx: r.cpuid_7_2_edx,
            supported: r.supported,
            source: r.source,
            microcode: r.microcode,
            family_model: r.family_model,
        };
        h.check()?;
        Ok(h)
    }
}

/// What a host needs for one mitigation a guest reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Need {
    /// The mitigation is effective as it is.
    Nothing,
    /// Effective once this IA32_SPEC_CTRL bit is forced on.
    Force(SpecCtrl),
    /// Ineffective, and no bit of this host fixes it.
    Unfixable,
}

impl HostModel {
    /// Whether the facts hang together: a name, and nothing forcible that
    /// the CPUID does not enumerate.
    pub fn check(&self) -> Result<(), PoolError> {
        if self.name.is_empty() {
            return Err(PoolError::NoName);
        }
        let bits = self.supported - enumerated_spec_ctrl(self.cpuid_7_2_edx);
        if !bits.is_empty() {
            return Err(PoolError::ForcesUnenumerated {
                host: self.name.clone(),
                bits,
                edx: self.cpuid_7_2_edx,
            });
        }
        Ok(())
    }

    /// Whether Branch History Injection affects this part: it does not
    /// enumerate `BHI_NO` (`IA32_ARCH_CAPABILITIES[20]`).
    pub fn bhi_affected(&self) -> bool {
        self.arch_capabilities & arch_cap::BHI_NO == 0
    }

    /// Whether this part enumerates `BHI_CTRL` (`CPUID.(7,2):EDX[4]`, the
    /// `BHI_DIS_S` control): the software BHB-clearing sequence does not
    /// cover its branch history.
    pub fn has_bhi_ctrl(&self) -> bool {
        self.cpuid_7_2_edx & cpuid_7_2_edx::BHI_CTRL != 0
    }

    /// What this host needs for `m` (the rules of the module docs).
    pub fn need(&self, m: Mitigation) -> Need {
        let edx = self.cpuid_7_2_edx;
        let ac = self.arch_capabilities;
        match m {
            Mitigation::BhbClearSeqS => {
                if !self.bhi_affected() || !self.has_bhi_ctrl() {
                    Need::Nothing
                } else {
                    Need::Force(SpecCtrl::BHI_DIS_S)
                }
            }
            Mitigation::RetpolineS => {
                if ac & arch_cap::RRSBA == 0 {
                    Need::Nothing
                } else if edx & cpuid_7_2_edx::RRSBA_CTRL == 0 {
                    Need::Unfixable
                } else {
                    Need::Force(SpecCtrl::RRSBA_DIS_S)
                }
            }
        }
    }

    /// For a guest reporting `report` (`MSR_VIRTUAL_MITIGATION_CTRL` bits):
    /// the bits this host forces on, and the reported mitigations it cannot
    /// make effective.
    pub fn forcing(&self, report: u64) -> HostForcing {
        let mut f = HostForcing::default();
        for m in mitigations(report) {
            match self.need(m) {
                Need::Nothing => {}
                Need::Force(bit) if self.supported.contains(bit) => f.forced |= bit,
                Need::Force(_) | Need::Unfixable => f.unprotected |= m.bit(),
            }
        }
        f
    }
}

/// One host's answer to one report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostForcing {
    /// IA32_SPEC_CTRL bits forced on.
    pub forced: SpecCtrl,
    /// Reported mitigations left ineffective (`MSR_VIRTUAL_MITIGATION_*`
    /// bits).
    pub unprotected: u64,
}

/// A migration pool: the host models a guest may run on.
///
/// # Invariants
///
/// At least one host; names unique; every host passes
/// [`HostModel::check`] (also when read from a file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawPool")]
pub struct Pool {
    hosts: Vec<HostModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    hosts: Vec<HostModel>,
}

impl TryFrom<RawPool> for Pool {
    type Error = PoolError;
    fn try_from(r: RawPool) -> Result<Pool, PoolError> {
        Pool::new(r.hosts)
    }
}

/// Why hosts do not make a pool.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// Two different host models with one name.
    #[error("two different host models are named {0:?}")]
    NameClash(String),
    /// No host at all.
    #[error("a pool needs at least one host")]
    Empty,
    /// A host file claims to force bits its CPUID does not enumerate.
    #[error("host {host:?} claims it can force {bits}, which its CPUID.(EAX=7,ECX=2):EDX={edx:#x} does not enumerate: take the facts from the host (kfsc-policy facts)")]
    ForcesUnenumerated {
        /// The host.
        host: String,
        /// The bits claimed without enumeration.
        bits: SpecCtrl,
        /// Its CPUID.(EAX=7,ECX=2):EDX.
        edx: u32,
    },
    /// A host without a name.
    #[error("a host model needs a name")]
    NoName,
}

impl Pool {
    /// A pool of `hosts`; the same model given twice counts once.
    pub fn new(hosts: impl IntoIterator<Item = HostModel>) -> Result<Pool, PoolError> {
        let mut pool = Pool { hosts: Vec::new() };
        for h in hosts {
            pool.add(h)?;
        }
        if pool.hosts.is_empty() {
            return Err(PoolError::Empty);
        }
        Ok(pool)
    }

    /// Add a host model; on error the pool is unchanged.
    pub fn add(&mut self, host: HostModel) -> Result<(), PoolError> {
        host.check()?;
        match self.hosts.iter().find(|h| h.name == host.name) {
            Some(h) if *h == host => Ok(()),
            Some(_) => Err(PoolError::NameClash(host.name)),
            None => {
                self.hosts.push(host);
                Ok(())
            }
        }
    }

    /// The host models, in the order they were added.
    pub fn hosts(&self) -> &[HostModel] {
        &self.hosts
    }

    /// The host models, taken out of the pool.
    pub fn into_hosts(self) -> Vec<HostModel> {
        self.hosts
    }

    /// The host model named `name`.
    pub fn host(&self, name: &str) -> Option<&HostModel> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The pool's decision.
    pub fn decide(&self) -> Decision {
        let mut bits = 0;
        for h in &self.hosts {
            for m in Mitigation::ALL {
                if h.need(m) != Need::Nothing {
                    bits |= m.bit();
                }
            }
        }
        Decision {
            advertised: Advertised::new(bits).unwrap_or_default(),
        }
    }
}

/// The pool-wide part of the decision; per-host forcing is
/// [`HostModel::forcing`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// `MSR_VIRTUAL_MITIGATION_ENUM` for every VM of the pool (nothing:
    /// do not advertise the virtual MSRs at all).
    pub advertised: Advertised,
}

/// Every report a guest can make with the advertised mitigations, in
/// increasing order (0 first).
pub fn reports(advertised: Advertised) -> Vec<u64> {
    let adv = advertised.mitigations() & MITIGATION_BITS;
    (0..=adv).filter(|r| r & !adv == 0).collect()
}

/// A report's mitigations by name, e.g. "bhb-clear-seq-s+retpoline-s", or
/// "none".
pub fn report_name(report: u64) -> String {
    let names: Vec<&str> = mitigations(report).map(Mitigation::name).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join("+")
    }
}

/// The decision table as text: the advertisement, then one line per host and
/// report.
pub fn table(pool: &Pool) -> String {
    use std::fmt::Write;
    let d = pool.decide();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "advertise: ARCH_CAPABILITIES.VIRTUAL_ENUM={} MITIGATION_CTRL_SUPPORT={} MITIGATION_ENUM={:#x} ({})",
        u8::from(d.advertised.any()),
        u8::from(d.advertised.any()),
        d.advertised.mitigations(),
        report_name(d.advertised.mitigations())
    );
    let _ = writeln!(
        s,
        "{:<20} {:<28} {:<24} unprotected",
        "host", "guest reports", "force on"
    );
    for h in &pool.hosts {
        for r in reports(d.advertised) {
            let f = h.forcing(r);
            let unprotected = if f.unprotected == 0 {
                "-".to_string()
            } else {
                report_name(f.unprotected)
            };
            let _ = writeln!(
                s,
                "{:<20} {:<28} {:<24} {}",
                h.name,
                report_name(r),
                f.forced,
                unprotected
            );
        }
    }
    s
}
