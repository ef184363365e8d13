// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `KVM_CAP_FORCE_SPEC_CTRL`, typed, over kvm-ioctls: the capability check,
//! the supported bits, the VM-wide and per-vCPU configuration, and the MSR
//! filter that routes the virtual mitigation MSRs to the VMM.
//!
//! The numbers come from `include/uapi/linux/kvm_force_spec_ctrl.h`
//! ([`crate::abi`]); a configuration is validated with the module's own
//! policy ([`crate::spec_ctrl`]) before it reaches KVM, so that a bad one is
//! a typed error here rather than a bare `EINVAL`.

use crate::abi;
use crate::msr::FILTERED;
use crate::spec_ctrl::{self, Config, Invalid, Request, Scope};
use kvm_bindings::{kvm_enable_cap, KVM_MSR_EXIT_REASON_FILTER};
use kvm_ioctls::{
    Cap, Kvm, MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, VcpuFd, VmFd,
};
use std::io;
use thiserror::Error;
use vmm_sys_util::ioctl::ioctl_with_mut_ref;

/// Why a `KVM_CAP_FORCE_SPEC_CTRL` call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The capability is absent: the kvm_force_spec_ctrl module is not
    /// loaded, or has no backend on this host.
    #[error(
        "KVM_CAP_FORCE_SPEC_CTRL is not available (is the kvm_force_spec_ctrl module loaded?)"
    )]
    NoCapability,
    /// The request was refused before reaching KVM.
    #[error("invalid configuration (mask {mask:#x}, value {value:#x}): {reason:?}")]
    Invalid {
        /// The mask asked for.
        mask: u64,
        /// The value asked for.
        value: u64,
        /// Why.
        reason: Invalid,
    },
    /// The ioctl failed.
    #[error("{what}: {source}")]
    Ioctl {
        /// Which call.
        what: &'static str,
        /// The errno.
        source: io::Error,
    },
}

fn ioctl_err(what: &'static str, e: kvm_ioctls::Error) -> Error {
    Error::Ioctl {
        what,
        source: io::Error::from_raw_os_error(e.errno()),
    }
}

/// Whether KVM offers the capability (on /dev/kvm).
pub fn available(kvm: &Kvm) -> bool {
    kvm.check_extension_raw(libc::c_ulong::from(abi::KVM_CAP_FORCE_SPEC_CTRL)) > 0
}

/// Whether the VM offers the capability.
pub fn vm_available(vm: &VmFd) -> bool {
    vm.check_extension_raw(libc::c_ulong::from(abi::KVM_CAP_FORCE_SPEC_CTRL)) > 0
}

/// `KVM_GET_SUPPORTED_FORCE_SPEC_CTRL`: the bits this host can force on.
pub fn supported(kvm: &Kvm) -> Result<u64, Error> {
    if !available(kvm) {
        return Err(Error::NoCapability);
    }
    let mut bits: u64 = 0;
    // SAFETY: The ioctl writes one u64 (its _IOR size) into `bits`, which
    // lives across the call; `kvm` is an open /dev/kvm.
    let r = unsafe {
        ioctl_with_mut_ref(
            kvm,
            libc::c_ulong::from(abi::KVM_GET_SUPPORTED_FORCE_SPEC_CTRL),
            &mut bits,
        )
    };
    if r < 0 {
        return Err(Error::Ioctl {
            what: "KVM_GET_SUPPORTED_FORCE_SPEC_CTRL",
            source: io::Error::last_os_error(),
        });
    }
    Ok(bits)
}

fn enable_cap_args(config: Config, flags: u64) -> kvm_enable_cap {
    let mut cap = kvm_enable_cap {
        cap: abi::KVM_CAP_FORCE_SPEC_CTRL,
        ..Default::default()
    };
    cap.args[abi::KVM_FORCE_SPEC_CTRL_ARG_MASK] = config.mask();
    cap.args[abi::KVM_FORCE_SPEC_CTRL_ARG_VALUE] = config.value();
    cap.args[abi::KVM_FORCE_SPEC_CTRL_ARG_FLAGS] = flags;
    cap
}

/// A checked configuration: `value` within `mask`, and `mask` within
/// `supported` (a bit the host's MSR does not accept may not be forced on,
/// nor off).
pub fn config(mask: u64, value: u64, supported: u64) -> Result<Config, Error> {
    let mut args = [0; 4];
    args[abi::KVM_FORCE_SPEC_CTRL_ARG_MASK] = mask;
    args[abi::KVM_FORCE_SPEC_CTRL_ARG_VALUE] = value;
    match spec_ctrl::parse_enable_cap(&args, Scope::Vm, supported) {
        Ok(Request::Set(c)) => Ok(c),
        Ok(Request::Clear) => Err(Error::Invalid {
            mask,
            value,
            reason: Invalid::Flags,
        }),
        Err(reason) => Err(Error::Invalid {
            mask,
            value,
            reason,
        }),
    }
}

/// The VM-wide configuration (mask 0 turns forcing off).
pub fn set_vm(vm: &VmFd, config: Config) -> Result<(), Error> {
    vm.enable_cap(&enable_cap_args(config, 0))
        .map_err(|e| ioctl_err("KVM_ENABLE_CAP(KVM_CAP_FORCE_SPEC_CTRL) on the VM", e))
}

/// The vCPU's own configuration, replacing the VM-wide one for it.
pub fn set_vcpu(vcpu: &VcpuFd, config: Config) -> Result<(), Error> {
    vcpu.enable_cap(&enable_cap_args(config, 0))
        .map_err(|e| ioctl_err("KVM_ENABLE_CAP(KVM_CAP_FORCE_SPEC_CTRL) on a vCPU", e))
}

/// Drop the vCPU's own configuration: the VM-wide one applies again.
pub fn clear_vcpu(vcpu: &VcpuFd) -> Result<(), Error> {
    vcpu.enable_cap(&enable_cap_args(
        Config::OFF,
        abi::KVM_FORCE_SPEC_CTRL_CLEAR,
    ))
    .map_err(|e| ioctl_err("KVM_FORCE_SPEC_CTRL_CLEAR on a vCPU", e))
}

/// `KVM_CAP_FORCE_SPEC_CTRL` as methods of kvm-ioctls' [`VmFd`], for VMMs
/// that prefer `vm.set_force_spec_ctrl(config)` to [`set_vm`]`(&vm, config)`.
pub trait VmFdExt {
    /// Whether this VM is bound to the module ([`vm_available`]).
    fn force_spec_ctrl_available(&self) -> bool;
    /// The VM-wide configuration ([`set_vm`]).
    fn set_force_spec_ctrl(&self, config: Config) -> Result<(), Error>;
}

impl VmFdExt for VmFd {
    fn force_spec_ctrl_available(&self) -> bool {
        vm_available(self)
    }
    fn set_force_spec_ctrl(&self, config: Config) -> Result<(), Error> {
        set_vm(self, config)
    }
}

/// `KVM_CAP_FORCE_SPEC_CTRL` as methods of kvm-ioctls' [`VcpuFd`].
pub trait VcpuFdExt {
    /// The vCPU's own configuration ([`set_vcpu`]).
    fn set_force_spec_ctrl(&self, config: Config) -> Result<(), Error>;
    /// Back to the VM-wide configuration ([`clear_vcpu`]).
    fn clear_force_spec_ctrl(&self) -> Result<(), Error>;
}

impl VcpuFdExt for VcpuFd {
    fn set_force_spec_ctrl(&self, config: Config) -> Result<(), Error> {
        set_vcpu(self, config)
    }
    fn clear_force_spec_ctrl(&self) -> Result<(), Error> {
        clear_vcpu(self)
    }
}

/// One bit per MSR of a filter range; a clear bit denies the access.
static DENY: [u8; 1] = [0];

/// The ranges of `KVM_X86_SET_MSR_FILTER` that send the guest's accesses to
/// the virtual mitigation MSRs (and its reads of IA32_ARCH_CAPABILITIES) to
/// the VMM ([`FILTERED`]), for a VMM that has MSRs of its own to filter: KVM
/// keeps one filter per VM, so merge these into yours (with
/// [`MsrFilterDefaultAction::ALLOW`] for the rest) rather than let
/// [`route_virtual_msrs`] replace it. Filtered accesses exit to userspace only
/// with [`enable_msr_exits`].
pub fn virtual_msr_filter_ranges() -> Vec<MsrFilterRange<'static>> {
    FILTERED
        .iter()
        .map(|&(base, nmsrs, read, write)| {
            let mut flags = MsrFilterRangeFlags::empty();
            if read {
                flags |= MsrFilterRangeFlags::READ;
            }
            if write {
                flags |= MsrFilterRangeFlags::WRITE;
            }
            MsrFilterRange {
                flags,
                base,
                msr_count: nmsrs,
                bitmap: &DENY,
            }
        })
        .collect()
}

/// `KVM_CAP_X86_USER_SPACE_MSR` for filtered MSRs: an access the filter
/// denies exits to userspace (`VcpuExit::X86Rdmsr`/`X86Wrmsr`) instead of
/// raising #GP. A VMM that already enables it for other reasons needs only
/// [`KVM_MSR_EXIT_REASON_FILTER`] among its reasons.
pub fn enable_msr_exits(vm: &VmFd) -> Result<(), Error> {
    if !vm.check_extension(Cap::X86UserSpaceMsr) || !vm.check_extension(Cap::X86MsrFilter) {
        return Err(Error::Ioctl {
            what: "KVM_CAP_X86_USER_SPACE_MSR/KVM_CAP_X86_MSR_FILTER",
            source: io::Error::from_raw_os_error(libc::ENOTSUP),
        });
    }
    let mut cap = kvm_enable_cap {
        cap: kvm_bindings::KVM_CAP_X86_USER_SPACE_MSR,
        ..Default::default()
    };
    cap.args[0] = u64::from(KVM_MSR_EXIT_REASON_FILTER);
    vm.enable_cap(&cap)
        .map_err(|e| ioctl_err("KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)", e))
}

/// Route the guest's accesses to the virtual mitigation MSRs (and its reads
/// of IA32_ARCH_CAPABILITIES) to the VMM, for a VMM without an MSR filter of
/// its own: [`enable_msr_exits`], then a filter denying exactly
/// [`virtual_msr_filter_ranges`], which replaces any filter the VM had.
/// Everything else stays KVM's.
pub fn route_virtual_msrs(vm: &VmFd) -> Result<(), Error> {
    enable_msr_exits(vm)?;
    vm.set_msr_filter(MsrFilterDefaultAction::ALLOW, &virtual_msr_filter_ranges())
        .map_err(|e| ioctl_err("KVM_X86_SET_MSR_FILTER", e))
}
