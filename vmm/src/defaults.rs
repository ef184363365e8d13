// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The default policy, for guests that report nothing (every upstream
//! guest: the virtual mitigation MSRs were never merged into Linux).
//!
//! A guest picks its mitigations once, at boot, from the CPU model its VMM
//! gives it: the same model on every host of its migration pool. This
//! module predicts what a Linux guest picks from that model
//! ([`LinuxChoice`]), and decides, per host, what to force so that the
//! choice stays effective there, and what the model should advertise so that
//! no host is left where neither the guest's choice nor a forced bit
//! protects it. The rules, each with its source:
//!
//! 1. **Kernel Spectre v2 mode** (Linux `arch/x86/kernel/cpu/bugs.c`,
//!    `spectre_v2_select_mitigation()`, v6.9 to v6.15; later kernels moved
//!    it to `spectre_v2_update_mitigation()` with the same outcome for these
//!    inputs): enhanced IBRS if the model has `IBRS_ALL`; IBRS on kernel
//!    entry if the RETBleed bug is set, i.e. the model has `RSBA` or its
//!    family/model is on Linux's list ([`GuestModel::family_model`]);
//!    retpoline otherwise. A model without the ARCH_CAPABILITIES MSR
//!    (`CPUID.7.0:EDX[29]` clear) is `arch_capabilities: 0`. The rules are
//!    Intel's: pools of other vendors are not modelled.
//! 2. **Retpoline needs RSB underflow to stay in the RSB.** Intel,
//!    "Retpoline: A Branch Target Injection Mitigation" (rev. 2022) and
//!    "Return Stack Buffer Underflow" guidance: on parts with `RSBA`
//!    (Skylake family) a RET may be predicted from the BTB and retpoline is
//!    incomplete, with no IA32_SPEC_CTRL bit to prevent it; on parts with
//!    `RRSBA` it is incomplete unless `RRSBA_DIS_S` is set. A retpoline guest
//!    sets `RRSBA_DIS_S` itself only if its model shows `RRSBA` and
//!    `RRSBA_CTRL` (`spec_ctrl_disable_kernel_rrsba()`). So: a host with
//!    `RRSBA` forces `RRSBA_DIS_S` for a retpoline guest that does not set
//!    it; where the host cannot, or has `RSBA`, the model must advertise
//!    `RSBA` (the guest then uses IBRS on entry), as Firecracker's T2S
//!    template does for Skylake/Cascade Lake pools.
//! 3. **BHI** (Intel, "Branch History Injection and Intra-mode Branch
//!    Target Injection", 2022/2024; Linux `bhi_select_mitigation()`): a
//!    model with `BHI_NO` makes the guest do nothing; a retpoline guest that
//!    believes RRSBA is off relies on retpoline; a model with `BHI_CTRL`
//!    makes the guest set `BHI_DIS_S` itself; otherwise the guest clears the
//!    BHB in software (`clear_bhb_loop`). Intel: that sequence is effective
//!    only on parts that do not enumerate `BHI_CTRL`; on parts that do (and
//!    are not `BHI_NO`), `BHI_DIS_S` is the mitigation. So such a host forces
//!    `BHI_DIS_S` for a software-clearing guest, and for a guest told
//!    `BHI_NO`; a model may claim `BHI_NO` only if every host is `BHI_NO` or
//!    can force `BHI_DIS_S`.
//! 4. **Honest RRSBA** (as Firecracker's T2S template): where a host
//!    behaves as `RRSBA` and cannot force `RRSBA_DIS_S`, the model
//!    advertises `RRSBA=1`.
//! 5. **The model must be runnable everywhere**: every CPUID.(7,2):EDX
//!    control and `IBRS_ALL` it shows must exist on every host (a guest
//!    writing `BHI_DIS_S` where the MSR lacks it takes #GP).
//!
//! An operator may opt bits out ([`Opts::opt_out`]): they are never forced,
//! and the decision lists the hosts where the guest is then exposed.
//! Reports through the virtual MSRs refine the default per vCPU and never
//! weaken it ([`crate::forcing::VmForcing`]).

use crate::config::SpecCtrl;
use crate::msr::arch_cap;
use crate::pool::{cpuid_7_2_edx as edx, enumerated_spec_ctrl, HostModel, Pool};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write};
use thiserror::Error;

/// The CPU model a VMM gives a guest, the same on every host of its pool:
/// the parts of it the guest's mitigation choice depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestModel {
    /// IA32_ARCH_CAPABILITIES as the guest reads it.
    pub arch_capabilities: u64,
    /// CPUID.(EAX=7,ECX=2):EDX as the guest sees it.
    pub cpuid_7_2_edx: u32,
    /// Display family and model of CPUID.1:EAX as the guest sees them (Linux
    /// also decides by model); `None`: not on any of Linux's lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_model: Option<[u8; 2]>,
}

/// Intel family-6 models Linux marks RETBleed-affected whatever
/// IA32_ARCH_CAPABILITIES says (`arch/x86/kernel/cpu/common.c`,
/// `cpu_vuln_blacklist`, the `RETBLEED` entries, v6.12): Skylake, Kaby Lake,
/// Cannon Lake, Ice Lake client, Comet Lake, Lakefield, Rocket Lake. A
/// guest without eIBRS on such a model uses IBRS on kernel entry.
const RETBLEED_MODELS: [u8; 11] = [
    0x4e, 0x5e, 0x55, 0x8e, 0x9e, 0x66, 0x7e, 0xa5, 0xa6, 0x8a, 0xa7,
];

impl GuestModel {
    /// The model a host's own facts would give (a host-passthrough model).
    pub fn of_host(h: &HostModel) -> GuestModel {
        GuestModel {
            arch_capabilities: h.arch_capabilities,
            cpuid_7_2_edx: h.cpuid_7_2_edx,
            family_model: h.family_model,
        }
    }

    fn retbleed_model(&self) -> bool {
        matches!(self.family_model, Some([6, m]) if RETBLEED_MODELS.contains(&m))
    }

    fn has(&self, ac: u64) -> bool {
        self.arch_capabilities & ac != 0
    }

    /// What a Linux guest picks from this model (rules 1 to 3).
    pub fn linux_choice(&self) -> LinuxChoice {
        let v2 = if self.has(arch_cap::IBRS_ALL) {
            V2Mode::Eibrs
        } else if self.has(arch_cap::RSBA) || self.retbleed_model() {
            V2Mode::Ibrs
        } else {
            V2Mode::Retpoline
        };
        let sets_rrsba_dis_s = v2 == V2Mode::Retpoline
            && self.has(arch_cap::RRSBA)
            && self.cpuid_7_2_edx & edx::RRSBA_CTRL != 0;
        let bhi = if self.has(arch_cap::BHI_NO) {
            Bhi::NotAffected
        } else if v2 == V2Mode::Retpoline && (!self.has(arch_cap::RRSBA) || sets_rrsba_dis_s) {
            Bhi::Retpoline
        } else if self.cpuid_7_2_edx & edx::BHI_CTRL != 0 {
            Bhi::SetsBhiDisS
        } else {
            Bhi::ClearsBhb
        };
        LinuxChoice {
            v2,
            sets_rrsba_dis_s,
            bhi,
        }
    }
}

/// Linux's kernel-mode Spectre v2 mitigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum V2Mode {
    /// Enhanced IBRS.
    Eibrs,
    /// IBRS set on every kernel entry.
    Ibrs,
    /// Retpoline.
    Retpoline,
}

impl fmt::Display for V2Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            V2Mode::Eibrs => "eIBRS",
            V2Mode::Ibrs => "IBRS on kernel entry",
            V2Mode::Retpoline => "retpoline",
        })
    }
}

/// Linux's BHI mitigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bhi {
    /// None: the model says `BHI_NO`.
    NotAffected,
    /// None: retpoline covers it (the model says RRSBA is off).
    Retpoline,
    /// `BHI_DIS_S` set by the guest.
    SetsBhiDisS,
    /// The software BHB-clearing sequence.
    ClearsBhb,
}

impl fmt::Display for Bhi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bhi::NotAffected => "nothing (BHI_NO)",
            Bhi::Retpoline => "nothing (retpoline covers it)",
            Bhi::SetsBhiDisS => "BHI_DIS_S, set by the guest",
            Bhi::ClearsBhb => "software BHB clearing",
        })
    }
}

/// What a Linux guest picks from its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxChoice {
    /// Kernel Spectre v2 mode.
    pub v2: V2Mode,
    /// Whether it sets `RRSBA_DIS_S` itself.
    pub sets_rrsba_dis_s: bool,
    /// BHI.
    pub bhi: Bhi,
}

/// The operator's choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    /// Bits never forced (e.g. `BHI_DIS_S`, costly for some guest OSes).
    pub opt_out: SpecCtrl,
}

/// Why the guest's choice is not effective on a host without help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Why {
    /// Retpoline, on a host with RRSBA, without `RRSBA_DIS_S`.
    RetpolineRrsba,
    /// Retpoline, on a host with RSBA.
    RetpolineRsba,
    /// Software BHB clearing, on a host that enumerates `BHI_CTRL`.
    BhbClearOnBhiCtrl,
    /// Nothing for BHI (model `BHI_NO`), on a host affected by BHI.
    BhiNoOnAffected,
    /// Retpoline relied on for BHI, on an RRSBA host where `RRSBA_DIS_S` is
    /// opted out.
    RetpolineBhiRrsba,
    /// The guest sets the bit itself: forced as well, at no cost, for
    /// kernels older than the prediction.
    Backstop,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::RetpolineRrsba => "the guest's retpoline is incomplete where RET falls back to alternate predictors (RRSBA)",
            Why::RetpolineRsba => "the guest's retpoline is incomplete where RET falls back to the BTB (RSBA), and no bit prevents it",
            Why::BhbClearOnBhiCtrl => "the guest's software BHB clearing does not cover this part's branch history (BHI_CTRL)",
            Why::BhiNoOnAffected => "the guest was told BHI_NO and does nothing against BHI, which affects this part",
            Why::RetpolineBhiRrsba => "the guest relies on retpoline against BHI, which RRSBA undoes here while RRSBA_DIS_S is opted out",
            Why::Backstop => "the guest sets this bit itself; forced too, at no cost, for kernels older than the prediction",
        })
    }
}

/// A host where the guest's choice is not effective and the bit that would
/// make it so is opted out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exposure {
    /// The bit that would protect the guest.
    pub bit: SpecCtrl,
    /// Why it is needed.
    pub why: Why,
}

/// A bit forced on a host, and why the guest needs it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forced {
    /// The bit forced on.
    pub bit: SpecCtrl,
    /// Why the guest's own choice needs it on this host.
    pub why: Why,
}

/// One host's part of the default decision.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostDefault {
    /// The host model's name.
    pub host: String,
    /// The bits forced on for every vCPU there.
    pub forced: SpecCtrl,
    /// Each bit of `forced` with its reason (a bit two reasons need is
    /// listed twice).
    pub reasons: Vec<Forced>,
    /// Where the guest stays exposed because of the operator's opt-out.
    pub exposed: Vec<Exposure>,
}

/// The default decision for a pool and a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultDecision {
    /// The model as given.
    pub model: GuestModel,
    /// IA32_ARCH_CAPABILITIES bits the model must advertise in addition.
    pub advertise: u64,
    /// IA32_ARCH_CAPABILITIES bits the model must not advertise.
    pub withdraw: u64,
    /// What the guest then picks.
    pub choice: LinuxChoice,
    /// Per host, in pool order.
    pub hosts: Vec<HostDefault>,
}

impl DefaultDecision {
    /// The model the VMM should give the guest.
    pub fn advised_model(&self) -> GuestModel {
        GuestModel {
            arch_capabilities: (self.model.arch_capabilities | self.advertise) & !self.withdraw,
            ..self.model
        }
    }

    /// What `host` forces for every vCPU; `None` for a host not in the pool.
    pub fn forced(&self, host: &str) -> Option<SpecCtrl> {
        self.hosts.iter().find(|h| h.host == host).map(|h| h.forced)
    }
}

/// Why no default decision protects the guest.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The model shows a control or capability a host lacks.
    #[error("host {host:?} lacks {what}, which the guest's CPU model shows: the guest would use it there; take it out of the model or the host out of the pool")]
    ModelExceedsHost {
        /// The host.
        host: String,
        /// What it lacks.
        what: &'static str,
    },
    /// A host that needs a bit it cannot force, and no model change helps.
    #[error("host {host:?} needs {bit} forced on ({why}) and cannot force it (it can force {supported}): load the module there, or take the host out of the pool")]
    Unprotectable {
        /// The host.
        host: String,
        /// The bit.
        bit: SpecCtrl,
        /// Why.
        why: Why,
        /// What the host can force.
        supported: SpecCtrl,
    },
}

/// What `h` needs for `choice`: (bit, why) pairs, and whether retpoline is
/// incomplete there whatever is forced (RSBA).
fn needs(h: &HostModel, choice: &LinuxChoice) -> (Vec<(SpecCtrl, Why)>, bool) {
    let ac = h.arch_capabilities;
    let mut need = Vec::new();
    let mut unfixable_retpoline = false;
    if choice.v2 == V2Mode::Retpoline {
        // Rule 2.
        if ac & arch_cap::RSBA != 0 {
            unfixable_retpoline = true;
        } else if ac & arch_cap::RRSBA != 0 && !choice.sets_rrsba_dis_s {
            need.push((SpecCtrl::RRSBA_DIS_S, Why::RetpolineRrsba));
        }
    }
    // Rule 3. A host with BHI_NO needs nothing; one without BHI_CTRL is
    // covered by the software sequence.
    let affected = h.bhi_affected();
    match choice.bhi {
        Bhi::NotAffected if affected => need.push((SpecCtrl::BHI_DIS_S, Why::BhiNoOnAffected)),
        Bhi::ClearsBhb if affected && h.has_bhi_ctrl() => {
            need.push((SpecCtrl::BHI_DIS_S, Why::BhbClearOnBhiCtrl))
        }
        _ => {}
    }
    (need, unfixable_retpoline)
}

impl Pool {
    /// The default decision for guests given `model` (rules of the module
    /// docs). Pure; the same pool and model give the same answer on every
    /// host.
    pub fn default_policy(
        &self,
        model: GuestModel,
        opts: Opts,
    ) -> Result<DefaultDecision, PolicyError> {
        // Rule 5.
        for h in self.hosts() {
            let missing = model.cpuid_7_2_edx & !h.cpuid_7_2_edx;
            if missing != 0 {
                return Err(PolicyError::ModelExceedsHost {
                    host: h.name.clone(),
                    what: edx_name(missing),
                });
            }
            if model.arch_capabilities & arch_cap::IBRS_ALL != 0
                && h.arch_capabilities & arch_cap::IBRS_ALL == 0
            {
                return Err(PolicyError::ModelExceedsHost {
                    host: h.name.clone(),
                    what: "IBRS_ALL (enhanced IBRS)",
                });
            }
        }
        let can =
            |h: &HostModel, bit: SpecCtrl| h.supported.contains(bit) && !opts.opt_out.contains(bit);
        let mut advertise = 0;
        let mut withdraw = 0;
        // Rule 4: honest RRSBA.
        for h in self.hosts() {
            if h.arch_capabilities & arch_cap::RRSBA != 0 && !can(h, SpecCtrl::RRSBA_DIS_S) {
                advertise |= arch_cap::RRSBA;
            }
        }
        // Rule 3: BHI_NO only where every affected host can force BHI_DIS_S
        // (an opted-out bit counts as forcible: the table shows the
        // exposure instead).
        if model.arch_capabilities & arch_cap::BHI_NO != 0 {
            for h in self.hosts() {
                if h.bhi_affected() && !h.supported.contains(SpecCtrl::BHI_DIS_S) {
                    withdraw |= arch_cap::BHI_NO;
                }
            }
        }
        // Rule 2: a retpoline guest that some host leaves incomplete gets
        // RSBA, and uses IBRS on entry.
        let adjusted = |advertise: u64| GuestModel {
            arch_capabilities: (model.arch_capabilities | advertise) & !withdraw,
            ..model
        };
        if adjusted(advertise).linux_choice().v2 == V2Mode::Retpoline {
            let m = adjusted(advertise);
            let choice = m.linux_choice();
            let incomplete = self.hosts().iter().any(|h| {
                let (need, rsba) = needs(h, &choice);
                rsba || need
                    .iter()
                    .any(|&(bit, why)| why == Why::RetpolineRrsba && !h.supported.contains(bit))
            });
            if incomplete {
                advertise |= arch_cap::RSBA;
            }
        }
        let advised = adjusted(advertise);
        let choice = advised.linux_choice();
        let mut hosts = Vec::new();
        for h in self.hosts() {
            let (mut need, _) = needs(h, &choice);
            let bhi_ctrl = h.has_bhi_ctrl();
            // A guest that relies on retpoline for BHI is covered only while
            // RRSBA_DIS_S is in force on an RRSBA host.
            if choice.bhi == Bhi::Retpoline
                && h.arch_capabilities & arch_cap::RRSBA != 0
                && !choice.sets_rrsba_dis_s
                && opts.opt_out.contains(SpecCtrl::RRSBA_DIS_S)
                && h.bhi_affected()
            {
                need.push((SpecCtrl::BHI_DIS_S, Why::RetpolineBhiRrsba));
            }
            let mut d = HostDefault {
                host: h.name.clone(),
                forced: SpecCtrl::empty(),
                reasons: Vec::new(),
                exposed: Vec::new(),
            };
            for (bit, why) in need {
                if opts.opt_out.contains(bit) {
                    d.exposed.push(Exposure { bit, why });
                } else if can(h, bit) {
                    d.forced |= bit;
                    d.reasons.push(Forced { bit, why });
                } else if why == Why::RetpolineBhiRrsba && !bhi_ctrl {
                    d.exposed.push(Exposure { bit, why });
                } else {
                    return Err(PolicyError::Unprotectable {
                        host: h.name.clone(),
                        bit,
                        why,
                        supported: h.supported,
                    });
                }
            }
            // Backstops: where the guest sets a bit itself, the host forces
            // it too if it can. The value is the guest's own, so it costs
            // nothing, and it protects kernels older than the prediction
            // (before the 2024 BHI patches, or retpoline kernels without
            // spec_ctrl_disable_kernel_rrsba()).
            let mut backstop = |bit: SpecCtrl| {
                d.forced |= bit;
                d.reasons.push(Forced {
                    bit,
                    why: Why::Backstop,
                });
            };
            if choice.bhi == Bhi::SetsBhiDisS
                && h.bhi_affected()
                && bhi_ctrl
                && can(h, SpecCtrl::BHI_DIS_S)
            {
                backstop(SpecCtrl::BHI_DIS_S);
            }
            if choice.sets_rrsba_dis_s
                && h.arch_capabilities & arch_cap::RRSBA != 0
                && can(h, SpecCtrl::RRSBA_DIS_S)
            {
                backstop(SpecCtrl::RRSBA_DIS_S);
            }
            hosts.push(d);
        }
        Ok(DefaultDecision {
            model,
            advertise: advertise & !model.arch_capabilities,
            withdraw: withdraw & model.arch_capabilities,
            choice,
            hosts,
        })
    }
}

fn edx_name(missing: u32) -> &'static str {
    let spec = enumerated_spec_ctrl(missing);
    if spec.contains(SpecCtrl::BHI_DIS_S) {
        "BHI_CTRL (CPUID.(7,2):EDX[4])"
    } else if spec.contains(SpecCtrl::RRSBA_DIS_S) {
        "RRSBA_CTRL (CPUID.(7,2):EDX[2])"
    } else if spec.contains(SpecCtrl::IPRED_DIS_S) {
        "IPRED_CTRL (CPUID.(7,2):EDX[1])"
    } else if spec.contains(SpecCtrl::PSFD) {
        "PSFD (CPUID.(7,2):EDX[0])"
    } else if spec.contains(SpecCtrl::DDPD_U) {
        "DDPD_U (CPUID.(7,2):EDX[3])"
    } else {
        "a CPUID.(7,2):EDX feature"
    }
}

fn arch_cap_names(bits: u64) -> String {
    let names: Vec<&str> = [
        (arch_cap::IBRS_ALL, "IBRS_ALL"),
        (arch_cap::RSBA, "RSBA"),
        (arch_cap::RRSBA, "RRSBA"),
        (arch_cap::BHI_NO, "BHI_NO"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join("|")
    }
}

/// The default decision as text: the model advice, then one line per host.
pub fn default_table(d: &DefaultDecision) -> String {
    let mut s = String::new();
    let c = d.choice;
    let _ = writeln!(
        s,
        "model: ARCH_CAPABILITIES {:#x} CPUID.7.2:EDX {:#x}; add to ARCH_CAPABILITIES: {}; take out: {}",
        d.model.arch_capabilities,
        d.model.cpuid_7_2_edx,
        arch_cap_names(d.advertise),
        arch_cap_names(d.withdraw)
    );
    let _ = writeln!(
        s,
        "a Linux guest picks: spectre_v2 {}{}, BHI {}",
        c.v2,
        if c.sets_rrsba_dis_s {
            " + RRSBA_DIS_S"
        } else {
            ""
        },
        c.bhi
    );
    // The mask as a number too, for scripts (scripts/guest/suites/pool-hop).
    let _ = writeln!(s, "{:<20} {:<8} {:<24} exposed", "host", "mask", "force on");
    for h in &d.hosts {
        let exposed: Vec<String> = h
            .exposed
            .iter()
            .map(|e| format!("{} opted out: {}", e.bit, e.why))
            .collect();
        let _ = writeln!(
            s,
            "{:<20} {:<8} {:<24} {}",
            h.host,
            format!("{:#x}", h.forced.bits()),
            h.forced.to_string(),
            if exposed.is_empty() {
                "-".to_string()
            } else {
                exposed.join("; ")
            }
        );
        for r in &h.reasons {
            let _ = writeln!(s, "  {} on {}: {}", r.bit, h.host, r.why);
        }
    }
    s
}
