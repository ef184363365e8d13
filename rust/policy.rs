// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 OR BSD-3-Clause

//! The policy of `KVM_CAP_FORCE_SPEC_CTRL`, as pure logic.
//!
//! Nothing here depends on the `kernel` crate: the module and the host test
//! crate (`rust/host`) compile this same file, so `cargo test` exercises the
//! code the module runs. The userspace crate carries a copy
//! (`vmm/src/spec_ctrl.rs`, checked to be identical by `scripts/vmm.sh
//! lint`), hence the licence: GPL-2.0 for the module, Apache-2.0 or
//! BSD-3-Clause for rust-vmm VMMs. The ABI numbers come from the uapi header through
//! the generated `abi_generated.rs`.

use crate::abi;

/// Bits of IA32_SPEC_CTRL (MSR 0x48), named as in Linux's
/// `arch/x86/include/asm/msr-index.h`.
pub mod bits {
    /// Indirect Branch Restricted Speculation.
    pub const IBRS: u64 = 1 << 0;
    /// Single Thread Indirect Branch Predictors.
    pub const STIBP: u64 = 1 << 1;
    /// Speculative Store Bypass Disable.
    pub const SSBD: u64 = 1 << 2;
    /// Indirect predictor disable, user mode.
    pub const IPRED_DIS_U: u64 = 1 << 3;
    /// Indirect predictor disable, supervisor mode.
    pub const IPRED_DIS_S: u64 = 1 << 4;
    /// Restricted RSB alternate disable, user mode.
    pub const RRSBA_DIS_U: u64 = 1 << 5;
    /// Restricted RSB alternate disable, supervisor mode.
    pub const RRSBA_DIS_S: u64 = 1 << 6;
    /// Predictive Store Forwarding Disable.
    pub const PSFD: u64 = 1 << 7;
    /// Data Dependent Prefetcher disable, user mode.
    pub const DDPD_U: u64 = 1 << 8;
    /// Branch History Injection disable, supervisor mode.
    pub const BHI_DIS_S: u64 = 1 << 10;

    /// Every bit the module knows, with its name, in bit order.
    pub const NAMED: [(&str, u64); 10] = [
        ("IBRS", IBRS),
        ("STIBP", STIBP),
        ("SSBD", SSBD),
        ("IPRED_DIS_U", IPRED_DIS_U),
        ("IPRED_DIS_S", IPRED_DIS_S),
        ("RRSBA_DIS_U", RRSBA_DIS_U),
        ("RRSBA_DIS_S", RRSBA_DIS_S),
        ("PSFD", PSFD),
        ("DDPD_U", DDPD_U),
        ("BHI_DIS_S", BHI_DIS_S),
    ];

    /// The union of [`NAMED`].
    pub const KNOWN: u64 = {
        let mut all = 0;
        let mut i = 0;
        while i < NAMED.len() {
            all |= NAMED[i].1;
            i += 1;
        }
        all
    };
}

/// The bits that can be forced on, given a probe telling whether the host's
/// IA32_SPEC_CTRL accepts a value.
///
/// Each known bit is probed on its own. Bits the module does not know are
/// never reported: forcing a bit on is only meaningful for a mitigation the
/// module can name. A host without the MSR accepts nothing, so supports 0.
pub fn supported(mut host_accepts: impl FnMut(u64) -> bool) -> u64 {
    bits::NAMED
        .iter()
        .filter(|(_, bit)| host_accepts(*bit))
        .fold(0, |acc, (_, bit)| acc | bit)
}

/// What the host forces: the bits in `mask` are held at their value in
/// `value`, the others are the guest's.
///
/// # Invariants
///
/// `value & !mask == 0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    mask: u64,
    value: u64,
}

impl Config {
    /// Forcing off: the guest owns every bit.
    pub const OFF: Config = Config { mask: 0, value: 0 };

    /// A configuration; `None` unless `value & !mask == 0`.
    pub const fn new(mask: u64, value: u64) -> Option<Config> {
        if value & !mask != 0 {
            return None;
        }
        // INVARIANT: checked just above.
        Some(Config { mask, value })
    }

    /// The bits the host controls.
    pub const fn mask(&self) -> u64 {
        self.mask
    }

    /// What the controlled bits are forced to.
    pub const fn value(&self) -> u64 {
        self.value
    }

    /// Whether any bit is forced.
    pub const fn is_active(&self) -> bool {
        self.mask != 0
    }

    /// The value IA32_SPEC_CTRL must hold while the guest runs, given what
    /// the guest believes it holds: contract item 8.
    pub const fn effective(&self, guest_view: u64) -> u64 {
        (guest_view & !self.mask) | (self.value & self.mask)
    }
}

/// Where a `KVM_ENABLE_CAP` was issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A VM fd: the VM-wide configuration.
    Vm,
    /// A vCPU fd: the vCPU's own configuration, overriding the VM's.
    Vcpu,
}

/// A valid `KVM_ENABLE_CAP(KVM_CAP_FORCE_SPEC_CTRL)` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Use this configuration (mask 0 turns forcing off).
    Set(Config),
    /// vCPU scope only: drop the vCPU's own configuration.
    Clear,
}

/// Why a request was refused; every reason is `-EINVAL` to userspace, the
/// distinction is for tests and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// `args[3]` is not zero.
    Reserved,
    /// `args[2]` holds a flag that is not defined, or not for this scope.
    Flags,
    /// `KVM_FORCE_SPEC_CTRL_CLEAR` came with a non-zero mask or value.
    ClearWithConfig,
    /// `value & !mask != 0`.
    ValueOutsideMask,
    /// `mask` holds a bit the host's IA32_SPEC_CTRL does not accept. Such a
    /// bit cannot be forced on, and not off either: with "virtualize
    /// IA32_SPEC_CTRL" a guest write of it inside the mask would not fault
    /// (SDM vol. 3C 28.3), land in the shadow and make a guest view that
    /// `KVM_SET_MSRS` refuses on restore.
    Unsupported,
}

/// Validate the `args` of `KVM_ENABLE_CAP` (contract item 3 and 5).
pub fn parse_enable_cap(args: &[u64; 4], scope: Scope, supported: u64) -> Result<Request, Invalid> {
    let mask = args[abi::KVM_FORCE_SPEC_CTRL_ARG_MASK];
    let value = args[abi::KVM_FORCE_SPEC_CTRL_ARG_VALUE];
    let flags = args[abi::KVM_FORCE_SPEC_CTRL_ARG_FLAGS];

    if args[abi::KVM_FORCE_SPEC_CTRL_ARG_RESERVED] != 0 {
        return Err(Invalid::Reserved);
    }
    if flags & !abi::KVM_FORCE_SPEC_CTRL_VALID_FLAGS != 0 {
        return Err(Invalid::Flags);
    }
    if flags & abi::KVM_FORCE_SPEC_CTRL_CLEAR != 0 {
        return match (scope, mask | value) {
            (Scope::Vm, _) => Err(Invalid::Flags),
            (Scope::Vcpu, 0) => Ok(Request::Clear),
            (Scope::Vcpu, _) => Err(Invalid::ClearWithConfig),
        };
    }
    let config = Config::new(mask, value).ok_or(Invalid::ValueOutsideMask)?;
    // `value` is inside `mask`: this also refuses forcing such a bit on.
    if mask & !supported != 0 {
        return Err(Invalid::Unsupported);
    }
    Ok(Request::Set(config))
}

/// How a host enforces the configuration (contract item 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// VMX with "virtualize IA32_SPEC_CTRL": no exits for guest accesses.
    VmxVirt,
    /// VMX without it: guest accesses to the MSR exit while forcing.
    VmxIntercept,
    /// SVM: guest accesses to the MSR exit while forcing.
    SvmIntercept,
    /// SVM with V_SPEC_CTRL: the CPU runs the guest with the OR of a host
    /// and a guest copy of the MSR, so bits forced on go into the host copy
    /// and guest accesses do not exit; a bit forced off needs interception
    /// ([`Backend::intercepts`]), since an OR cannot clear it.
    SvmVspec,
    /// The host has no IA32_SPEC_CTRL, or no backend for its vendor.
    None,
}

/// What the host offers a backend, as KVM reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// The host has IA32_SPEC_CTRL.
    pub has_msr: bool,
    /// KVM's vendor module lets a provider own the MSR, and which it is.
    pub vendor: Vendor,
    /// VMX "virtualize IA32_SPEC_CTRL" is available.
    pub has_virt: bool,
    /// SVM V_SPEC_CTRL is available and KVM lets a provider set its host
    /// copy.
    pub has_host_copy: bool,
    /// The administrator asked for interception even with the control.
    pub prefer_intercept: bool,
}

/// KVM's vendor module, as far as owning IA32_SPEC_CTRL goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// No vendor module, or one without the ownership helpers.
    None,
    /// kvm_intel.
    Vmx,
    /// kvm_amd.
    Svm,
}

/// The best backend for these facts: the hardware's help unless told
/// otherwise, interception where the vendor allows it, else none.
pub const fn choose_backend(host: HostFacts) -> Backend {
    match (host.has_msr, host.vendor) {
        (false, _) | (_, Vendor::None) => Backend::None,
        (true, Vendor::Vmx) if host.has_virt && !host.prefer_intercept => Backend::VmxVirt,
        (true, Vendor::Vmx) => Backend::VmxIntercept,
        (true, Vendor::Svm) if host.has_host_copy && !host.prefer_intercept => Backend::SvmVspec,
        (true, Vendor::Svm) => Backend::SvmIntercept,
    }
}

/// Whether `KVM_CHECK_EXTENSION(KVM_CAP_FORCE_SPEC_CTRL)` answers non-zero
/// (contract item 1): the host has IA32_SPEC_CTRL *and* a backend. A host
/// without a backend reports 0, so that userspace never sees the capability
/// and then `EOPNOTSUPP` from `KVM_ENABLE_CAP`.
pub const fn capable(host: HostFacts) -> bool {
    !matches!(choose_backend(host), Backend::None)
}

impl Backend {
    /// The name shown in the debug view.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::VmxVirt => "vmx-virt",
            Backend::VmxIntercept => "vmx-intercept",
            Backend::SvmIntercept => "svm-intercept",
            Backend::SvmVspec => "svm-vspec",
            Backend::None => "none",
        }
    }

    /// Whether guest RDMSR/WRMSR of the MSR exit while `config` is forced
    /// (an inactive configuration leaves the MSR to KVM).
    pub const fn intercepts(self, config: Config) -> bool {
        match self {
            Backend::VmxVirt | Backend::None => false,
            Backend::VmxIntercept | Backend::SvmIntercept => true,
            // The hardware ORs the host copy in: it can force bits on, never
            // off.
            Backend::SvmVspec => config.mask() & !config.value() != 0,
        }
    }

    /// Whether the backend loads forced bits into V_SPEC_CTRL's host copy
    /// and passes guest accesses through where it can.
    pub const fn uses_host_copy(self) -> bool {
        matches!(self, Backend::SvmVspec)
    }

    /// Whether the module must set V_SPEC_CTRL's host copy, given whether
    /// the CPU has V_SPEC_CTRL: the CPU ORs the host copy into whatever the
    /// guest runs with, so `svm-intercept` on such a CPU (module parameter
    /// `intercept`) must also replace the masked bits there, or a bit the
    /// host itself sets could not be forced off.
    pub const fn sets_host_copy(self, cpu_has_host_copy: bool) -> bool {
        match self {
            Backend::SvmVspec => true,
            Backend::SvmIntercept => cpu_has_host_copy,
            _ => false,
        }
    }
}
