// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! This host's facts for the pool policy: CPUID.(EAX=7,ECX=2):EDX,
//! IA32_ARCH_CAPABILITIES through `/dev/cpu/N/msr` (the `msr` driver), and
//! the bits KVM can force (`/dev/kvm`).

use crate::pool::HostModel;
use std::{fs::File, io, os::unix::fs::FileExt};
use thiserror::Error;

/// Why this host's facts could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FactsError {
    /// The `msr` driver's file could not be read.
    #[error("{path}: {source} (load the msr module, run as root)")]
    Msr {
        /// The device file.
        path: String,
        /// What failed.
        source: io::Error,
    },
    /// /dev/kvm could not be opened.
    #[error("/dev/kvm: {0}")]
    Kvm(io::Error),
    /// The module's ioctl failed.
    #[error(transparent)]
    Capability(#[from] crate::kvm::Error),
}

/// CPUID leaf 7 subleaf 2, EDX (0 where the leaf does not exist).
pub fn cpuid_7_2_edx() -> u32 {
    let max = core::arch::x86_64::__cpuid_count(7, 0).eax;
    if max < 2 {
        return 0;
    }
    core::arch::x86_64::__cpuid_count(7, 2).edx
}

/// An MSR of CPU `cpu`, through the `msr` driver.
pub fn read_msr(cpu: u32, msr: u32) -> Result<u64, FactsError> {
    let path = format!("/dev/cpu/{cpu}/msr");
    let err = |source| FactsError::Msr {
        path: path.clone(),
        source,
    };
    let f = File::open(&path).map_err(err)?;
    let mut buf = [0u8; 8];
    f.read_exact_at(&mut buf, u64::from(msr)).map_err(err)?;
    Ok(u64::from_le_bytes(buf))
}

/// This host's facts, named `name`. A host without the module (or without
/// a backend) supports forcing nothing.
pub fn this_host(name: &str, cpu: u32) -> Result<HostModel, FactsError> {
    let kvm = kvm_ioctls::Kvm::new()
        .map_err(|e| FactsError::Kvm(io::Error::from_raw_os_error(e.errno())))?;
    let supported = match crate::kvm::supported(&kvm) {
        Ok(s) => s,
        Err(crate::kvm::Error::NoCapability) => 0,
        Err(e) => return Err(e.into()),
    };
    Ok(HostModel {
        name: name.to_string(),
        arch_capabilities: read_msr(cpu, crate::msr::MSR_IA32_ARCH_CAPABILITIES)?,
        cpuid_7_2_edx: cpuid_7_2_edx(),
        supported,
    })
}
