// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! KVM keeps one MSR filter per VM (`KVM_X86_SET_MSR_FILTER`), and each call
//! replaces the last. A VMM that filters MSRs for its own reasons and also
//! emulates the virtual mitigation MSRs needs one filter that does both:
//! [`MsrFilter::virtual_msrs`] is what this crate needs, [`MsrFilter::merge`]
//! combines it with the VMM's, and the VMM installs the result itself
//! ([`MsrFilter::install`]).
//!
//! KVM's rule, which the merge keeps: for an access, the first range whose
//! flags include the access type and which covers the MSR decides (bit set:
//! allowed); with none, the filter's default action decides. A denied access
//! exits to userspace when `KVM_MSR_EXIT_REASON_FILTER` is enabled
//! ([`crate::kvm::enable_msr_exits`]), and raises #GP otherwise.

use crate::msr::FILTERED;
use kvm_bindings::{KVM_MSR_FILTER_MAX_BITMAP_SIZE, KVM_MSR_FILTER_MAX_RANGES};
use kvm_ioctls::{MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, VmFd};
use std::collections::BTreeSet;
use std::io;
use thiserror::Error;

/// A run of consecutive MSRs from its first, with one decision each.
type Run = (u32, Vec<bool>);

/// MSRs one range can cover (KVM's bitmap limit, in bits).
const MAX_RANGE_MSRS: u32 = KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8;

/// One range of an [`MsrFilter`], owning its bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// Which accesses the range applies to.
    pub flags: MsrFilterRangeFlags,
    /// The first MSR.
    pub base: u32,
    /// One bit per MSR from `base` (bit set: allowed), `msr_count` bits.
    pub bitmap: Vec<u8>,
    /// How many MSRs the range covers.
    pub msr_count: u32,
}

impl Range {
    fn covers(&self, msr: u32, access: MsrFilterRangeFlags) -> bool {
        self.flags.contains(access) && msr >= self.base && msr - self.base < self.msr_count
    }

    fn allows(&self, msr: u32) -> bool {
        let i = (msr - self.base) as usize;
        self.bitmap
            .get(i / 8)
            .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }
}

/// Why filters cannot be merged or installed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FilterError {
    /// A range's bitmap is shorter than its MSR count needs, or the range
    /// wraps around the MSR space.
    #[error("MSR filter range at {base:#x}: {msr_count} MSRs need a bitmap of {} bytes, it has {have}", msr_count.div_ceil(8))]
    BadRange {
        /// The range's first MSR.
        base: u32,
        /// Its MSR count.
        msr_count: u32,
        /// Its bitmap's length in bytes.
        have: usize,
    },
    /// The merged filter needs more ranges than KVM takes.
    #[error("the merged MSR filter needs {0} ranges, KVM takes at most {KVM_MSR_FILTER_MAX_RANGES}: filter fewer MSRs, or group them")]
    TooManyRanges(usize),
    /// `KVM_X86_SET_MSR_FILTER` failed.
    #[error("KVM_X86_SET_MSR_FILTER: {0}")]
    Install(io::Error),
}

/// An MSR filter, as `KVM_X86_SET_MSR_FILTER` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsrFilter {
    /// Whether an access no range covers is allowed.
    pub default_allow: bool,
    /// The ranges, in KVM's order (the first covering range decides).
    pub ranges: Vec<Range>,
}

impl MsrFilter {
    /// The filter this crate needs: the guest's accesses to the virtual
    /// mitigation MSRs, and its reads of IA32_ARCH_CAPABILITIES, denied (so
    /// that they exit to the VMM); everything else allowed.
    pub fn virtual_msrs() -> MsrFilter {
        let ranges = FILTERED
            .iter()
            .map(|&(base, msr_count, read, write)| {
                let mut flags = MsrFilterRangeFlags::empty();
                flags.set(MsrFilterRangeFlags::READ, read);
                flags.set(MsrFilterRangeFlags::WRITE, write);
                Range {
                    flags,
                    base,
                    bitmap: vec![0; msr_count.div_ceil(8) as usize],
                    msr_count,
                }
            })
            .collect();
        MsrFilter {
            default_allow: true,
            ranges,
        }
    }

    /// Whether the filter allows `access` (`READ` or `WRITE`) of `msr`.
    pub fn allows(&self, msr: u32, access: MsrFilterRangeFlags) -> bool {
        self.ranges
            .iter()
            .find(|r| r.covers(msr, access))
            .map_or(self.default_allow, |r| r.allows(msr))
    }

    fn check(&self) -> Result<(), FilterError> {
        for r in &self.ranges {
            let short = r.bitmap.len() < r.msr_count.div_ceil(8) as usize;
            if short || r.base.checked_add(r.msr_count).is_none() {
                return Err(FilterError::BadRange {
                    base: r.base,
                    msr_count: r.msr_count,
                    have: r.bitmap.len(),
                });
            }
        }
        Ok(())
    }

    /// One filter that allows an access iff both `self` and `other` do.
    ///
    /// The result covers exactly the MSRs that either covers, split where
    /// KVM's bitmap size requires, with read and write ranges shared where
    /// they agree; it fails if that takes more ranges than KVM accepts.
    pub fn merge(&self, other: &MsrFilter) -> Result<MsrFilter, FilterError> {
        self.check()?;
        other.check()?;
        let default_allow = self.default_allow && other.default_allow;
        let reads = self.merged_runs(other, MsrFilterRangeFlags::READ, default_allow);
        let writes = self.merged_runs(other, MsrFilterRangeFlags::WRITE, default_allow);
        let mut ranges: Vec<Range> = Vec::new();
        let mut writes_left = writes;
        for (base, bits) in reads {
            let flags = match writes_left.iter().position(|w| *w == (base, bits.clone())) {
                Some(i) => {
                    writes_left.remove(i);
                    MsrFilterRangeFlags::READ | MsrFilterRangeFlags::WRITE
                }
                None => MsrFilterRangeFlags::READ,
            };
            ranges.push(range(flags, base, &bits));
        }
        for (base, bits) in writes_left {
            ranges.push(range(MsrFilterRangeFlags::WRITE, base, &bits));
        }
        if ranges.len() > KVM_MSR_FILTER_MAX_RANGES as usize {
            return Err(FilterError::TooManyRanges(ranges.len()));
        }
        Ok(MsrFilter {
            default_allow,
            ranges,
        })
    }

    /// For one access type: the runs of MSRs either filter covers, with
    /// the merged decision per MSR, leaving out runs that decide nothing
    /// beyond `default_allow`.
    fn merged_runs(
        &self,
        other: &MsrFilter,
        access: MsrFilterRangeFlags,
        default_allow: bool,
    ) -> Vec<Run> {
        let mut covered = BTreeSet::new();
        for r in self.ranges.iter().chain(&other.ranges) {
            if r.flags.contains(access) {
                covered.extend(r.base..r.base + r.msr_count);
            }
        }
        let mut runs: Vec<Run> = Vec::new();
        for msr in covered {
            let allowed = self.allows(msr, access) && other.allows(msr, access);
            match runs.last_mut() {
                Some((base, bits))
                    if *base + bits.len() as u32 == msr && (bits.len() as u32) < MAX_RANGE_MSRS =>
                {
                    bits.push(allowed)
                }
                _ => runs.push((msr, vec![allowed])),
            }
        }
        runs.retain(|(_, bits)| bits.iter().any(|&a| a != default_allow));
        runs
    }

    /// The ranges as kvm-ioctls takes them, borrowing the bitmaps.
    pub fn kvm_ranges(&self) -> Vec<MsrFilterRange<'_>> {
        self.ranges
            .iter()
            .map(|r| MsrFilterRange {
                flags: r.flags,
                base: r.base,
                msr_count: r.msr_count,
                bitmap: &r.bitmap,
            })
            .collect()
    }

    /// `KVM_X86_SET_MSR_FILTER` with this filter, replacing the VM's.
    pub fn install(&self, vm: &VmFd) -> Result<(), FilterError> {
        self.check()?;
        if self.ranges.len() > KVM_MSR_FILTER_MAX_RANGES as usize {
            return Err(FilterError::TooManyRanges(self.ranges.len()));
        }
        let action = if self.default_allow {
            MsrFilterDefaultAction::ALLOW
        } else {
            MsrFilterDefaultAction::DENY
        };
        vm.set_msr_filter(action, &self.kvm_ranges())
            .map_err(|e| FilterError::Install(io::Error::from_raw_os_error(e.errno())))
    }
}

fn range(flags: MsrFilterRangeFlags, base: u32, bits: &[bool]) -> Range {
    let mut bitmap = vec![0u8; bits.len().div_ceil(8)];
    for (i, _) in bits.iter().enumerate().filter(|(_, &a)| a) {
        bitmap[i / 8] |= 1 << (i % 8);
    }
    Range {
        flags,
        base,
        bitmap,
        msr_count: bits.len() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msr::{MSR_IA32_ARCH_CAPABILITIES, MSR_VIRTUAL_MITIGATION_CTRL};
    use proptest::prelude::*;

    const ACCESSES: [MsrFilterRangeFlags; 2] =
        [MsrFilterRangeFlags::READ, MsrFilterRangeFlags::WRITE];
    const R: MsrFilterRangeFlags = MsrFilterRangeFlags::READ;
    const W: MsrFilterRangeFlags = MsrFilterRangeFlags::WRITE;

    #[test]
    fn merged_with_a_vmm_filter() {
        // A VMM that denies writes of the TSC and reads of 0x10a..0x10b.
        let vmm = MsrFilter {
            default_allow: true,
            ranges: vec![
                Range {
                    flags: W,
                    base: 0x10,
                    bitmap: vec![0],
                    msr_count: 1,
                },
                Range {
                    flags: R,
                    base: 0x10a,
                    bitmap: vec![0],
                    msr_count: 2,
                },
            ],
        };
        let m = vmm.merge(&MsrFilter::virtual_msrs()).unwrap();
        assert!(!m.allows(0x10, W) && m.allows(0x10, R));
        assert!(!m.allows(0x10b, R) && !m.allows(MSR_IA32_ARCH_CAPABILITIES, R));
        assert!(m.allows(MSR_IA32_ARCH_CAPABILITIES, W));
        assert!(!m.allows(MSR_VIRTUAL_MITIGATION_CTRL, W));
        assert!(m.allows(0x48, R) && m.allows(0x48, W));
    }

    #[test]
    fn bad_input_is_an_error() {
        let short = MsrFilter {
            default_allow: true,
            ranges: vec![Range {
                flags: R,
                base: 0,
                bitmap: vec![],
                msr_count: 9,
            }],
        };
        assert!(matches!(
            short.merge(&MsrFilter::virtual_msrs()),
            Err(FilterError::BadRange { .. })
        ));
        let wraps = MsrFilter {
            default_allow: true,
            ranges: vec![Range {
                flags: R,
                base: u32::MAX,
                bitmap: vec![0],
                msr_count: 2,
            }],
        };
        assert!(wraps.merge(&MsrFilter::virtual_msrs()).is_err());
        // Seventeen separate denied MSRs need seventeen ranges.
        let many = MsrFilter {
            default_allow: true,
            ranges: (0..17)
                .map(|i| Range {
                    flags: R,
                    base: i * 16,
                    bitmap: vec![0],
                    msr_count: 1,
                })
                .collect(),
        };
        assert!(matches!(
            many.merge(&many),
            Err(FilterError::TooManyRanges(17))
        ));
    }

    fn arb_filter() -> impl Strategy<Value = MsrFilter> {
        let range =
            (1u32..4, 0u32..48, 1u32..20, any::<u32>()).prop_map(|(f, base, n, bits)| Range {
                flags: MsrFilterRangeFlags::from_bits_truncate(f),
                base,
                bitmap: bits.to_le_bytes()[..(n as usize).div_ceil(8)].to_vec(),
                msr_count: n,
            });
        (any::<bool>(), proptest::collection::vec(range, 0..4)).prop_map(
            |(default_allow, ranges)| MsrFilter {
                default_allow,
                ranges,
            },
        )
    }

    proptest! {
        /// The merge allows exactly what both allow, for every MSR and
        /// access type.
        #[test]
        fn merge_is_the_intersection(a in arb_filter(), b in arb_filter()) {
            let m = a.merge(&b).unwrap();
            prop_assert!(m.ranges.len() <= KVM_MSR_FILTER_MAX_RANGES as usize);
            for msr in 0..80 {
                for access in ACCESSES {
                    prop_assert_eq!(m.allows(msr, access), a.allows(msr, access) && b.allows(msr, access),
                        "msr {:#x} {:?}", msr, access);
                }
            }
        }
    }
}
