// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! IA32_SPEC_CTRL bits as a typed set ([`SpecCtrl`]) and a forcing
//! configuration ([`Config`]): which bits are held (the mask) and at what
//! (the value).

use crate::spec_ctrl::{self as kernel, bits};
use bitflags::bitflags;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use thiserror::Error;

bitflags! {
    /// A set of IA32_SPEC_CTRL (MSR 0x48) bits, named as in Linux's
    /// `arch/x86/include/asm/msr-index.h`. Only the bits
    /// `KVM_CAP_FORCE_SPEC_CTRL` knows can be named; [`SpecCtrl::from_bits`]
    /// refuses others.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct SpecCtrl: u64 {
        /// Indirect Branch Restricted Speculation (bit 0).
        const IBRS = bits::IBRS;
        /// Single Thread Indirect Branch Predictors (bit 1).
        const STIBP = bits::STIBP;
        /// Speculative Store Bypass Disable (bit 2).
        const SSBD = bits::SSBD;
        /// Indirect predictor disable, user mode (bit 3).
        const IPRED_DIS_U = bits::IPRED_DIS_U;
        /// Indirect predictor disable, supervisor mode (bit 4).
        const IPRED_DIS_S = bits::IPRED_DIS_S;
        /// Restricted RSB alternate disable, user mode (bit 5).
        const RRSBA_DIS_U = bits::RRSBA_DIS_U;
        /// Restricted RSB alternate disable, supervisor mode (bit 6).
        const RRSBA_DIS_S = bits::RRSBA_DIS_S;
        /// Predictive Store Forwarding Disable (bit 7).
        const PSFD = bits::PSFD;
        /// Data Dependent Prefetcher disable, user mode (bit 8).
        const DDPD_U = bits::DDPD_U;
        /// Branch History Injection disable, supervisor mode (bit 10).
        const BHI_DIS_S = bits::BHI_DIS_S;
    }
}

/// Bits outside the ones `KVM_CAP_FORCE_SPEC_CTRL` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("IA32_SPEC_CTRL bits {0:#x} are not known to KVM_CAP_FORCE_SPEC_CTRL (known: {known:#x})", known = bits::KNOWN)]
pub struct UnknownBits(pub u64);

impl SpecCtrl {
    /// The set of `raw`, refusing bits that have no name here.
    pub fn from_raw(raw: u64) -> Result<SpecCtrl, UnknownBits> {
        SpecCtrl::from_bits(raw).ok_or(UnknownBits(raw & !bits::KNOWN))
    }
}

/// `BHI_DIS_S|RRSBA_DIS_S`, or `-` for the empty set.
impl fmt::Display for SpecCtrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, (name, _)) in self.iter_names().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// In files, the raw number (as `KVM_GET_SUPPORTED_FORCE_SPEC_CTRL`
/// returns it); unknown bits are refused on reading.
impl Serialize for SpecCtrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.bits())
    }
}

impl<'de> Deserialize<'de> for SpecCtrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SpecCtrl, D::Error> {
        let raw = u64::deserialize(d)?;
        SpecCtrl::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

/// Why a forcing configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Bits without a name (`SpecCtrl::from_bits_retain`).
    #[error(transparent)]
    Unknown(UnknownBits),
    /// The value sets bits the mask does not hold.
    #[error("value {value} sets bits outside mask {mask}: force a bit on by putting it in both")]
    ValueOutsideMask {
        /// The mask asked for.
        mask: SpecCtrl,
        /// The value asked for.
        value: SpecCtrl,
    },
    /// The mask holds bits this host cannot force.
    #[error("this host cannot force {unsupported} (it can force {supported}): leave those bits to the guest, or run the VM on a host that has them")]
    Unsupported {
        /// The bits asked for that the host lacks.
        unsupported: SpecCtrl,
        /// `KVM_GET_SUPPORTED_FORCE_SPEC_CTRL`.
        supported: SpecCtrl,
    },
}

/// What KVM forces for a VM or a vCPU: the bits of `mask` are held at their
/// value in `value`; the others are the guest's.
///
/// # Invariants
///
/// `value` is a subset of `mask`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct Config {
    mask: SpecCtrl,
    value: SpecCtrl,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mask: SpecCtrl,
    value: SpecCtrl,
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;
    fn try_from(r: RawConfig) -> Result<Config, ConfigError> {
        Config::new(r.mask, r.value)
    }
}

impl From<Config> for RawConfig {
    fn from(c: Config) -> RawConfig {
        RawConfig {
            mask: c.mask,
            value: c.value,
        }
    }
}

impl Config {
    /// Nothing forced.
    pub const OFF: Config = Config {
        mask: SpecCtrl::empty(),
        value: SpecCtrl::empty(),
    };

    /// Hold the bits of `mask` at their value in `value`.
    pub fn new(mask: SpecCtrl, value: SpecCtrl) -> Result<Config, ConfigError> {
        let unknown = (mask | value).bits() & !bits::KNOWN;
        if unknown != 0 {
            return Err(ConfigError::Unknown(UnknownBits(unknown)));
        }
        if !mask.contains(value) {
            return Err(ConfigError::ValueOutsideMask { mask, value });
        }
        // INVARIANT: checked just above.
        Ok(Config { mask, value })
    }

    /// Force the bits of `on` on, nothing off.
    pub fn force_on(on: SpecCtrl) -> Config {
        // INVARIANT: value == mask.
        Config {
            mask: on,
            value: on,
        }
    }

    /// The same configuration, if this host (`supported`,
    /// `KVM_GET_SUPPORTED_FORCE_SPEC_CTRL`) can force every bit of the mask.
    pub fn check_supported(self, supported: SpecCtrl) -> Result<Config, ConfigError> {
        let unsupported = self.mask - supported;
        if !unsupported.is_empty() {
            return Err(ConfigError::Unsupported {
                unsupported,
                supported,
            });
        }
        Ok(self)
    }

    /// The bits held.
    pub const fn mask(&self) -> SpecCtrl {
        self.mask
    }

    /// What the held bits are held at (a subset of [`Config::mask`]).
    pub const fn value(&self) -> SpecCtrl {
        self.value
    }

    /// Whether anything is forced.
    pub const fn is_active(&self) -> bool {
        !self.mask.is_empty()
    }

    /// The IA32_SPEC_CTRL value the hardware runs with while the guest's
    /// own view is `guest_view`.
    pub const fn effective(&self, guest_view: u64) -> u64 {
        self.kernel().effective(guest_view)
    }

    /// The module's own type, for the ABI.
    pub(crate) const fn kernel(&self) -> kernel::Config {
        match kernel::Config::new(self.mask.bits(), self.value.bits()) {
            Some(c) => c,
            // Unreachable by the invariant; OFF is the safe answer.
            None => kernel::Config::OFF,
        }
    }
}

/// `mask:value`, each as bit names.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.mask, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_definition_of_each_bit() {
        assert_eq!(SpecCtrl::all().bits(), bits::KNOWN);
        for (name, bit) in bits::NAMED {
            assert_eq!(SpecCtrl::from_name(name).map(|b| b.bits()), Some(bit));
        }
    }

    #[test]
    fn display() {
        assert_eq!(SpecCtrl::empty().to_string(), "-");
        assert_eq!(
            (SpecCtrl::BHI_DIS_S | SpecCtrl::RRSBA_DIS_S).to_string(),
            "RRSBA_DIS_S|BHI_DIS_S"
        );
        let c = Config::new(SpecCtrl::SSBD | SpecCtrl::IBRS, SpecCtrl::IBRS).unwrap();
        assert_eq!(c.to_string(), "IBRS|SSBD:IBRS");
    }

    #[test]
    fn refused() {
        assert_eq!(SpecCtrl::from_raw(1 << 9), Err(UnknownBits(1 << 9)));
        assert!(matches!(
            Config::new(SpecCtrl::IBRS, SpecCtrl::SSBD),
            Err(ConfigError::ValueOutsideMask { .. })
        ));
        let c = Config::force_on(SpecCtrl::BHI_DIS_S);
        assert!(matches!(
            c.check_supported(SpecCtrl::IBRS),
            Err(ConfigError::Unsupported { unsupported, .. }) if unsupported == SpecCtrl::BHI_DIS_S
        ));
        let bad: Result<Config, _> = serde_json::from_str(r#"{"mask":1,"value":2}"#);
        assert!(bad.is_err());
        let unknown: Result<SpecCtrl, _> = serde_json::from_str("512");
        assert!(unknown.is_err());
    }
}
