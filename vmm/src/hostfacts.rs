// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! This host's facts for the pool policy, as KVM reports them on /dev/kvm
//! (no root, no `msr` driver): IA32_ARCH_CAPABILITIES as the feature MSR
//! (`KVM_GET_MSRS` on /dev/kvm), CPUID.(EAX=7,ECX=2):EDX from
//! `KVM_GET_SUPPORTED_CPUID`, and the bits the module can force.
//!
//! These are what KVM can give a guest on this host, which is what a pool
//! is made of. KVM passes RSBA, RRSBA and BHI_NO through from the hardware,
//! and sets some other bits itself (`kvm_get_arch_capabilities()`).

use crate::kvm;
use crate::pool::HostModel;
use crate::SpecCtrl;
use std::io;
use thiserror::Error;

/// Why this host's facts could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FactsError {
    /// /dev/kvm could not be opened.
    #[error("/dev/kvm: {0} (is KVM loaded, and may this user open /dev/kvm?)")]
    Kvm(io::Error),
    /// A KVM call failed.
    #[error(transparent)]
    Call(#[from] kvm::Error),
}

/// This host's facts, named `name`. A host without the module (or without
/// a backend) can force nothing.
pub fn this_host(name: &str) -> Result<HostModel, FactsError> {
    let k = kvm_ioctls::Kvm::new()
        .map_err(|e| FactsError::Kvm(io::Error::from_raw_os_error(e.errno())))?;
    let supported = match kvm::supported(&k) {
        Ok(s) => s,
        Err(kvm::Error::NoCapability) => SpecCtrl::empty(),
        Err(e) => return Err(e.into()),
    };
    Ok(HostModel {
        name: name.to_string(),
        arch_capabilities: kvm::host_arch_capabilities(&k)?,
        cpuid_7_2_edx: kvm::host_cpuid_7_2_edx(&k)?,
        supported,
        source: Some("kfsc-policy facts (KVM on this host)".into()),
        microcode: microcode(),
        family_model: Some(family_model()),
    })
}

/// Display family and model of CPUID.1:EAX (Intel SDM vol. 2A, CPUID).
fn family_model() -> [u8; 2] {
    let eax = core::arch::x86_64::__cpuid(1).eax;
    let family = (eax >> 8) & 0xf;
    let ext_family = (eax >> 20) & 0xff;
    let model = (eax >> 4) & 0xf;
    let ext_model = (eax >> 16) & 0xf;
    let display_family = if family == 0xf {
        family + ext_family
    } else {
        family
    };
    let display_model = if family == 0x6 || family == 0xf {
        (ext_model << 4) | model
    } else {
        model
    };
    [display_family as u8, display_model as u8]
}

/// The running microcode revision, from /proc/cpuinfo.
fn microcode() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("microcode"))
        .and_then(|l| l.split(':').nth(1))
        .map(|v| v.trim().to_string())
}
