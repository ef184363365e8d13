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

use crate::msr::{Advertised, FILTERED};
use kvm_bindings::{KVM_MSR_FILTER_MAX_BITMAP_SIZE, KVM_MSR_FILTER_MAX_RANGES};
use kvm_ioctls::{MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, VmFd};
use std::collections::BTreeSet;
use std::io;
use thiserror::Error;

/// A run of consecutive MSRs from its first, with one decision each.
type Run = (u32, Vec<bool>);

/// MSRs one range can cover (KVM's bitmap limit, in bits).
pub const MAX_RANGE_MSRS: u32 = KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8;

/// The bitmap bytes KVM reads for `msr_count` MSRs: it copies whole longs
/// (`BITS_TO_LONGS(nmsrs) * sizeof(long)` in `kvm_add_msr_filter()`).
pub const fn bitmap_len(msr_count: u32) -> usize {
    msr_count.div_ceil(64) as usize * 8
}

/// One range of an [`MsrFilter`], owning its bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// Which accesses the range applies to.
    pub flags: MsrFilterRangeFlags,
    /// The first MSR.
    pub base: u32,
    /// One bit per MSR from `base` (bit set: allowed), at least
    /// [`bitmap_len`]`(msr_count)` bytes (KVM reads whole longs).
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
    /// A range's bitmap is shorter than KVM reads for its MSR count.
    #[error("MSR filter range at {base:#x}: {msr_count} MSRs need a bitmap of {} bytes (KVM reads whole longs), it has {have}", bitmap_len(*msr_count))]
    ShortBitmap {
        /// The range's first MSR.
        base: u32,
        /// Its MSR count.
        msr_count: u32,
        /// Its bitmap's length in bytes.
        have: usize,
    },
    /// A range that KVM refuses: no MSRs, more than [`MAX_RANGE_MSRS`], or
    /// past the last MSR.
    #[error("MSR filter range at {base:#x} with {msr_count} MSRs: KVM takes 1 to {MAX_RANGE_MSRS} MSRs per range, within the 32-bit MSR space")]
    BadSize {
        /// The range's first MSR.
        base: u32,
        /// Its MSR count.
        msr_count: u32,
    },
    /// A range whose flags are empty or not READ/WRITE.
    #[error("MSR filter range at {base:#x}: flags {flags:#x}, KVM takes READ, WRITE or both")]
    BadFlags {
        /// The range's first MSR.
        base: u32,
        /// Its flags.
        flags: u32,
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
    /// The filter this crate needs for a VM told `adv`: the guest's
    /// accesses to the virtual mitigation MSRs, and its reads of
    /// IA32_ARCH_CAPABILITIES, denied (so that they exit to the VMM);
    /// everything else allowed. With nothing advertised, nothing is denied:
    /// the MSRs do not exist and KVM answers IA32_ARCH_CAPABILITIES itself.
    pub fn virtual_msrs(adv: Advertised) -> MsrFilter {
        if !adv.any() {
            return MsrFilter {
                default_allow: true,
                ranges: Vec::new(),
            };
        }
        let ranges = FILTERED
            .iter()
            .map(|&(base, msr_count, read, write)| {
                let mut flags = MsrFilterRangeFlags::empty();
                flags.set(MsrFilterRangeFlags::READ, read);
                flags.set(MsrFilterRangeFlags::WRITE, write);
                Range {
                    flags,
                    base,
                    bitmap: vec![0; bitmap_len(msr_count)],
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

    /// Whether KVM would take the filter: every range with READ and/or
    /// WRITE, 1 to [`MAX_RANGE_MSRS`] MSRs within the MSR space, a bitmap
    /// of [`bitmap_len`] bytes; at most `KVM_MSR_FILTER_MAX_RANGES` ranges.
    pub fn check(&self) -> Result<(), FilterError> {
        let rw = MsrFilterRangeFlags::READ | MsrFilterRangeFlags::WRITE;
        for r in &self.ranges {
            if r.flags.is_empty() || !rw.contains(r.flags) {
                return Err(FilterError::BadFlags {
                    base: r.base,
                    flags: r.flags.bits(),
                });
            }
            if r.msr_count == 0
                || r.msr_count > MAX_RANGE_MSRS
                || r.base.checked_add(r.msr_count).is_none()
            {
                return Err(FilterError::BadSize {
                    base: r.base,
                    msr_count: r.msr_count,
                });
            }
            if r.bitmap.len() < bitmap_len(r.msr_count) {
                return Err(FilterError::ShortBitmap {
                    base: r.base,
                    msr_count: r.msr_count,
                    have: r.bitmap.len(),
                });
            }
        }
        if self.ranges.len() > KVM_MSR_FILTER_MAX_RANGES as usize {
            return Err(FilterError::TooManyRanges(self.ranges.len()));
        }
        Ok(())
    }

    /// One filter that allows an access iff both `self` and `other` do.
    ///
    /// The result has a range per stretch of MSRs (up to KVM's bitmap size)
    /// whose decision differs from the merged default, with read and write
    /// sharing a range where they agree; it fails if that takes more ranges
    /// than KVM accepts. KVM never filters the x2APIC MSRs (0x800-0x8ff)
    /// whatever the filter says.
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
        // Runs of MSRs whose merged decision differs from the default, each
        // grown over the gaps to the next such MSR while it fits one range
        // (a gap MSR gets the default, which it would get anyway).
        let mut runs: Vec<Run> = Vec::new();
        for msr in covered {
            let allowed = self.allows(msr, access) && other.allows(msr, access);
            if allowed == default_allow {
                continue;
            }
            match runs.last_mut() {
                Some((base, bits)) if msr - *base < MAX_RANGE_MSRS => {
                    let gap = (msr - *base) as usize - bits.len();
                    bits.extend(std::iter::repeat_n(default_allow, gap));
                    bits.push(allowed);
                }
                _ => runs.push((msr, vec![allowed])),
            }
        }
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
    let mut bitmap = vec![0u8; bitmap_len(bits.len() as u32)];
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
    const ADV: Advertised = match Advertised::new(1) {
        Ok(a) => a,
        Err(_) => Advertised::NONE,
    };
    const W: MsrFilterRangeFlags = MsrFilterRangeFlags::WRITE;

    fn deny(flags: MsrFilterRangeFlags, base: u32, msr_count: u32) -> Range {
        Range {
            flags,
            base,
            bitmap: vec![0; bitmap_len(msr_count)],
            msr_count,
        }
    }

    fn filter(ranges: Vec<Range>) -> MsrFilter {
        MsrFilter {
            default_allow: true,
            ranges,
        }
    }

    #[test]
    fn merged_with_a_vmm_filter() {
        // A VMM that denies writes of 0x10 and reads of 0x10a..0x10b.
        let vmm = filter(vec![deny(W, 0x10, 1), deny(R, 0x10a, 2)]);
        let m = vmm.merge(&MsrFilter::virtual_msrs(ADV)).unwrap();
        assert!(m.check().is_ok());
        assert!(!m.allows(0x10, W) && m.allows(0x10, R));
        assert!(!m.allows(0x10b, R) && !m.allows(MSR_IA32_ARCH_CAPABILITIES, R));
        assert!(m.allows(MSR_IA32_ARCH_CAPABILITIES, W));
        assert!(!m.allows(MSR_VIRTUAL_MITIGATION_CTRL, W));
        assert!(m.allows(0x48, R) && m.allows(0x48, W));
        // KVM reads whole longs of every bitmap.
        assert!(m.ranges.iter().all(|r| r.bitmap.len() % 8 == 0));
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut short = deny(R, 0, 9);
        short.bitmap.truncate(2);
        assert!(matches!(
            filter(vec![short]).merge(&MsrFilter::virtual_msrs(ADV)),
            Err(FilterError::ShortBitmap { .. })
        ));
        for (base, n) in [(0, u32::MAX), (0, 0), (u32::MAX, 2)] {
            let r = Range {
                flags: R,
                base,
                bitmap: vec![0; 8],
                msr_count: n,
            };
            assert!(matches!(
                filter(vec![r]).merge(&MsrFilter::virtual_msrs(ADV)),
                Err(FilterError::BadSize { .. })
            ));
        }
        let noflags = deny(MsrFilterRangeFlags::empty(), 0, 1);
        assert!(matches!(
            filter(vec![noflags]).check(),
            Err(FilterError::BadFlags { .. })
        ));
    }

    #[test]
    fn ranges_are_joined_where_they_fit() {
        // Sixteen denied MSRs close together share one range ...
        let near = filter((0..16).map(|i| deny(R, i * 16, 1)).collect());
        assert_eq!(near.merge(&near).unwrap().ranges.len(), 1);
        // ... and far apart need one each: with the crate's (0x10a joins
        // the one at 0), seventeen.
        let far = filter((0..16).map(|i| deny(R, i * 0x10000, 1)).collect());
        assert!(matches!(
            far.merge(&MsrFilter::virtual_msrs(ADV)),
            Err(FilterError::TooManyRanges(17))
        ));
    }

    fn arb_filter() -> impl Strategy<Value = MsrFilter> {
        let base = prop_oneof![0u32..48, 12200u32..12400, (u32::MAX - 40)..(u32::MAX - 20)];
        let range = (1u32..4, base, 1u32..20, any::<u64>()).prop_map(|(f, base, n, bits)| Range {
            flags: MsrFilterRangeFlags::from_bits_truncate(f),
            base,
            bitmap: bits.to_le_bytes().to_vec(),
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
        /// access type, and is a filter KVM takes.
        #[test]
        fn merge_is_the_intersection(a in arb_filter(), b in arb_filter()) {
            let m = a.merge(&b).unwrap();
            prop_assert!(m.check().is_ok());
            let probes = (0..80).chain(12180..12440).chain((u32::MAX - 50)..u32::MAX);
            for msr in probes {
                for access in ACCESSES {
                    prop_assert_eq!(m.allows(msr, access), a.allows(msr, access) && b.allows(msr, access),
                        "msr {:#x} {:?}", msr, access);
                }
            }
        }
    }
}
