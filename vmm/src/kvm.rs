// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `KVM_CAP_FORCE_SPEC_CTRL`, typed, over kvm-ioctls: the capability check,
//! the supported bits, the VM-wide and per-vCPU configuration
//! ([`VmFdExt`], [`VcpuFdExt`]), the user-space MSR exits the virtual
//! mitigation MSRs need, and the host's facts as KVM reports them.
//!
//! The numbers come from `include/uapi/linux/kvm_force_spec_ctrl.h`
//! ([`crate::abi`]). A [`Config`] is valid by construction, and
//! [`Config::check_supported`] refuses bits the host cannot force before
//! they reach KVM, so that a bad request is a typed error here rather than a
//! bare `EINVAL`.

use crate::abi;
use crate::config::{Config, ConfigError, SpecCtrl};
use crate::msr::MSR_IA32_ARCH_CAPABILITIES;
use kvm_bindings::{kvm_enable_cap, kvm_msr_entry, Msrs, KVM_MSR_EXIT_REASON_FILTER};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};
use std::io;
use thiserror::Error;
use vmm_sys_util::ioctl::ioctl_with_mut_ref;

/// Why a `KVM_CAP_FORCE_SPEC_CTRL` call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The capability is absent.
    #[error(
        "KVM_CAP_FORCE_SPEC_CTRL is not available: load the kvm_force_spec_ctrl module (it needs IA32_SPEC_CTRL and VMX or SVM)"
    )]
    NoCapability,
    /// The configuration was refused before reaching KVM.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The ioctl failed.
    #[error("{what}: {source}{hint}", hint = hint(source))]
    Ioctl {
        /// Which call.
        what: &'static str,
        /// The errno.
        source: io::Error,
    },
}

/// What a VMM can do about an errno of the module's calls.
fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => " (the VM's state is protected, e.g. SEV-ES: KVM cannot force its IA32_SPEC_CTRL)",
        Some(libc::EBUSY) => " (the VM is bound to another owner of IA32_SPEC_CTRL, or is moving its encryption context)",
        Some(libc::EINVAL) => " (a bit outside KVM_GET_SUPPORTED_FORCE_SPEC_CTRL, or a flag this module does not know)",
        _ => "",
    }
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

/// `KVM_GET_SUPPORTED_FORCE_SPEC_CTRL`: the bits this host can force (on
/// or off). Bits a newer module knows and this crate does not are left out.
pub fn supported(kvm: &Kvm) -> Result<SpecCtrl, Error> {
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
    Ok(SpecCtrl::from_bits_truncate(bits))
}

fn enable_cap_args(config: Config, flags: u64) -> kvm_enable_cap {
    let mut cap = kvm_enable_cap {
        cap: abi::KVM_CAP_FORCE_SPEC_CTRL,
        ..Default::default()
    };
    let k = config.kernel();
    cap.args[abi::KVM_FORCE_SPEC_CTRL_ARG_MASK] = k.mask();
    cap.args[abi::KVM_FORCE_SPEC_CTRL_ARG_VALUE] = k.value();
    cap.args[abi::KVM_FORCE_SPEC_CTRL_ARG_FLAGS] = flags;
    cap
}

fn set_vm(vm: &VmFd, config: Config) -> Result<(), Error> {
    vm.enable_cap(&enable_cap_args(config, 0))
        .map_err(|e| ioctl_err("KVM_ENABLE_CAP(KVM_CAP_FORCE_SPEC_CTRL) on the VM", e))
}

fn set_vcpu(vcpu: &VcpuFd, config: Config) -> Result<(), Error> {
    vcpu.enable_cap(&enable_cap_args(config, 0))
        .map_err(|e| ioctl_err("KVM_ENABLE_CAP(KVM_CAP_FORCE_SPEC_CTRL) on a vCPU", e))
}

fn clear_vcpu(vcpu: &VcpuFd) -> Result<(), Error> {
    vcpu.enable_cap(&enable_cap_args(
        Config::OFF,
        abi::KVM_FORCE_SPEC_CTRL_CLEAR,
    ))
    .map_err(|e| ioctl_err("KVM_FORCE_SPEC_CTRL_CLEAR on a vCPU", e))
}

/// `KVM_CAP_FORCE_SPEC_CTRL` on kvm-ioctls' [`VmFd`].
pub trait VmFdExt {
    /// Whether this VM offers the capability.
    fn force_spec_ctrl_available(&self) -> bool;
    /// The VM-wide configuration ([`Config::OFF`] turns forcing off). Set
    /// it before the first `KVM_RUN` for the guest's first instruction to
    /// run forced; later calls take effect on every vCPU that follows the
    /// VM-wide configuration before its next entry.
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

/// `KVM_CAP_FORCE_SPEC_CTRL` on kvm-ioctls' [`VcpuFd`]. Like every vCPU
/// ioctl, these wait while the vCPU is in `KVM_RUN`: call them on the vCPU's
/// thread, or after kicking it out.
pub trait VcpuFdExt {
    /// The vCPU's own configuration, which replaces the VM-wide one for it
    /// (see [`crate::forcing::VmForcing`] to keep both consistent).
    fn set_force_spec_ctrl(&self, config: Config) -> Result<(), Error>;
    /// Drop the vCPU's own configuration: the VM-wide one applies again.
    fn clear_force_spec_ctrl(&self) -> Result<(), Error>;
    /// IA32_ARCH_CAPABILITIES as KVM has it for this vCPU (`KVM_GET_MSRS`):
    /// the value of the VMM's final CPU model, once it has set it.
    fn arch_capabilities(&self) -> Result<u64, Error>;
}

impl VcpuFdExt for VcpuFd {
    fn set_force_spec_ctrl(&self, config: Config) -> Result<(), Error> {
        set_vcpu(self, config)
    }
    fn clear_force_spec_ctrl(&self) -> Result<(), Error> {
        clear_vcpu(self)
    }
    fn arch_capabilities(&self) -> Result<u64, Error> {
        let mut m = one_msr(MSR_IA32_ARCH_CAPABILITIES)?;
        let n = self
            .get_msrs(&mut m)
            .map_err(|e| ioctl_err("KVM_GET_MSRS(IA32_ARCH_CAPABILITIES) on a vCPU", e))?;
        Ok(first_value(&m, n))
    }
}

fn one_msr(index: u32) -> Result<Msrs, Error> {
    Msrs::from_entries(&[kvm_msr_entry {
        index,
        ..Default::default()
    }])
    .map_err(|_| Error::Ioctl {
        what: "Msrs",
        source: io::Error::from_raw_os_error(libc::ENOMEM),
    })
}

/// The value of the first entry if KVM filled it (n == 1), else 0: KVM
/// leaves out an MSR the host does not have.
fn first_value(m: &Msrs, n: usize) -> u64 {
    match (n, m.as_slice().first()) {
        (1, Some(e)) => e.data,
        _ => 0,
    }
}

/// IA32_ARCH_CAPABILITIES as KVM offers it to guests on this host (the
/// feature MSR, `KVM_GET_MSRS` on /dev/kvm; no root, no msr driver): the
/// host's bits KVM passes through, and those it sets itself (see
/// `kvm_get_arch_capabilities()`).
pub fn host_arch_capabilities(kvm: &Kvm) -> Result<u64, Error> {
    let mut m = one_msr(MSR_IA32_ARCH_CAPABILITIES)?;
    let n = kvm
        .get_msrs(&mut m)
        .map_err(|e| ioctl_err("KVM_GET_MSRS(IA32_ARCH_CAPABILITIES) on /dev/kvm", e))?;
    Ok(first_value(&m, n))
}

/// CPUID.(EAX=7,ECX=2):EDX as KVM supports it (`KVM_GET_SUPPORTED_CPUID`),
/// 0 where the leaf does not exist.
pub fn host_cpuid_7_2_edx(kvm: &Kvm) -> Result<u32, Error> {
    let cpuid = kvm
        .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| ioctl_err("KVM_GET_SUPPORTED_CPUID", e))?;
    Ok(cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 7 && e.index == 2)
        .map_or(0, |e| e.edx))
}

/// `KVM_CAP_X86_USER_SPACE_MSR` with [`KVM_MSR_EXIT_REASON_FILTER`]: an
/// access the MSR filter denies exits to userspace
/// (`VcpuExit::X86Rdmsr`/`X86Wrmsr`) instead of raising #GP. A VMM that
/// enables the capability for its own reasons passes its reasons ORed with
/// [`KVM_MSR_EXIT_REASON_FILTER`] in `extra_reasons` (KVM keeps the last
/// call's set).
pub fn enable_msr_exits(vm: &VmFd, extra_reasons: u32) -> Result<(), Error> {
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
    cap.args[0] = u64::from(KVM_MSR_EXIT_REASON_FILTER | extra_reasons);
    vm.enable_cap(&cap)
        .map_err(|e| ioctl_err("KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)", e))
}
