// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `kfsc-example-vmm`: a small VMM on kvm-ioctls that runs a guest following
//! the RFC's guest protocol on three vCPUs, and checks what the host forces.
//!
//! The guest (16-bit real mode, a few hand-assembled instructions) reads
//! IA32_ARCH_CAPABILITIES; if bit 63 is set, reads MSR_VIRTUAL_ENUMERATION
//! and MSR_VIRTUAL_MITIGATION_ENUM, and writes MSR_VIRTUAL_MITIGATION_CTRL
//! with the mitigations it "uses" (EBX, set per vCPU by this VMM) that are
//! enumerated. vCPU 0 reports the short BHB-clearing sequence, vCPU 1
//! retpoline, vCPU 2 never reports (EDI bit 0). Then each vCPU writes and
//! reads IA32_SPEC_CTRL N times, between two port writes that let the VMM
//! count the VM exits of that loop.
//!
//! The VMM uses the crate's public API only, as a rust-vmm VMM would: it
//! merges the crate's MSR filter into its own
//! ([`MsrFilter::merge`]) and installs the result; a report becomes the
//! vCPU's forcing at once through [`VmForcing`] (the pool policy's bits for
//! this host, combined with the operator's VM-wide configuration). It checks, per vCPU, in the module's debug view:
//! its own configuration and the value loaded follow its report and the
//! policy; one userspace exit per virtual-MSR access and none for
//! IA32_SPEC_CTRL; and it prints the VM exits of the IA32_SPEC_CTRL loop.
//! The last line is `KFSC-VMM-RESULT PASS` or `FAIL`.
//!
//! Usage: `kfsc-example-vmm --pool POOL.json --host NAME [--operator MASK:VALUE]
//! [--iterations N] [--max-loop-exits E]`

use clap::Parser;
use kvm_bindings::{kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES};
use kvm_force_spec_ctrl_vmm::{
    defaults::{GuestModel, Opts},
    forcing::{combine, Action, VcpuForcing, VmForcing},
    kvm::{self, VcpuFdExt, VmFdExt},
    msr::{self, arch_cap, VcpuMsrs, WriteEffect},
    msr_filter::{bitmap_len, MsrFilter, Range},
    pool::{report_name, Pool},
    Config, SpecCtrl,
};
use kvm_ioctls::MsrFilterRangeFlags;
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use std::{fs, path::PathBuf, process::ExitCode};
use thiserror::Error;

#[derive(Parser)]
#[command(about = "Run a guest that reports its mitigations through the virtual MSRs")]
struct Args {
    /// The migration pool (kfsc-policy pool).
    #[arg(long)]
    pool: PathBuf,
    /// This host's model in the pool.
    #[arg(long)]
    host: String,
    /// The operator's VM-wide configuration, MASK:VALUE.
    #[arg(long, default_value = "0:0", value_parser = parse_config)]
    operator: Config,
    /// The guest's CPU model is this pool host's: apply the pool's default
    /// policy (what this host forces for every guest) as well.
    #[arg(long)]
    model_of: Option<String>,
    /// IA32_SPEC_CTRL writes (and reads) per vCPU.
    #[arg(long, default_value_t = 10000)]
    iterations: u32,
    /// The most VM exits the IA32_SPEC_CTRL loop may take (vmx-virt: none
    /// but interrupts and the closing port write).
    #[arg(long, default_value_t = 50)]
    max_loop_exits: u64,
}

fn parse_config(s: &str) -> Result<Config, String> {
    let num = |t: &str| {
        let t = t.trim();
        match t.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => t.parse(),
        }
        .map_err(|e| format!("{t:?}: {e}"))
    };
    let (m, v) = s.split_once(':').ok_or("expected MASK:VALUE")?;
    let bits = |t: &str| SpecCtrl::from_raw(num(t)?).map_err(|e| e.to_string());
    Config::new(bits(m)?, bits(v)?).map_err(|e| e.to_string())
}

#[derive(Debug, Error)]
enum VmmError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Kvm(&'static str, kvm_ioctls::Error),
    #[error(transparent)]
    Abi(#[from] kvm::Error),
    #[error(transparent)]
    Filter(#[from] kvm_force_spec_ctrl_vmm::msr_filter::FilterError),
    #[error("{0}: {1}")]
    Pool(String, String),
    #[error("vCPU {0}: {1}")]
    Guest(u64, String),
}

/// The guest's code: where it is loaded, what it writes to IA32_SPEC_CTRL,
/// the marker ports.
const CODE_GPA: u64 = 0x1000;
const MEM_SIZE: usize = 0x10000;
const GUEST_SPEC_CTRL: u64 = SpecCtrl::STIBP.bits();
const PORT_LOOP_START: u16 = 0x11;
const PORT_LOOP_END: u16 = 0x12;

/// A tiny assembler for the 16-bit guest: bytes and rel8 jumps to labels.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.code.extend_from_slice(b);
        self
    }
    /// `mov r32, imm32` (operand-size prefix, B8+r).
    fn mov(&mut self, reg: u8, imm: u32) -> &mut Self {
        self.bytes(&[0x66, 0xb8 + reg]).bytes(&imm.to_le_bytes())
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) -> &mut Self {
        self.labels[l] = Some(self.code.len());
        self
    }
    /// A short jump with opcode `op` (EB jmp, 74 jz, 75 jnz) to `l`.
    fn jump(&mut self, op: u8, l: usize) -> &mut Self {
        self.code.extend_from_slice(&[op, 0]);
        self.fixups.push((self.code.len() - 1, l));
        self
    }
    fn finish(mut self) -> Result<Vec<u8>, String> {
        for (at, l) in self.fixups {
            let target = self.labels[l].ok_or("unbound label")?;
            let rel = target as i64 - (at as i64 + 1);
            self.code[at] = i8::try_from(rel).map_err(|_| "jump too far")? as u8;
        }
        Ok(self.code)
    }
}

const EAX: u8 = 0;
const ECX: u8 = 1;
const EDX: u8 = 2;
const ESI: u8 = 6;

fn guest_code(iterations: u32) -> Result<Vec<u8>, String> {
    let mut a = Asm::default();
    let skip = a.label();
    let lp = a.label();
    // EDI bit 0: never report.
    a.bytes(&[0x66, 0xf7, 0xc7]).bytes(&1u32.to_le_bytes()); // test edi, 1
    a.jump(0x75, skip);
    a.mov(ECX, msr::MSR_IA32_ARCH_CAPABILITIES)
        .bytes(&[0x0f, 0x32]); // rdmsr
    a.bytes(&[0x66, 0xf7, 0xc2])
        .bytes(&0x8000_0000u32.to_le_bytes()); // test edx, bit 63
    a.jump(0x74, skip);
    a.mov(ECX, msr::MSR_VIRTUAL_ENUMERATION)
        .bytes(&[0x0f, 0x32]);
    a.bytes(&[0x66, 0xa9])
        .bytes(&(msr::MITIGATION_CTRL_SUPPORT as u32).to_le_bytes()); // test eax
    a.jump(0x74, skip);
    a.mov(ECX, msr::MSR_VIRTUAL_MITIGATION_ENUM)
        .bytes(&[0x0f, 0x32]);
    a.bytes(&[0x66, 0x21, 0xd8]); // and eax, ebx: report only what is enumerated
    a.bytes(&[0x66, 0x31, 0xd2]); // xor edx, edx
    a.mov(ECX, msr::MSR_VIRTUAL_MITIGATION_CTRL)
        .bytes(&[0x0f, 0x30]); // wrmsr
    a.bind(skip);
    a.bytes(&[0xe6, PORT_LOOP_START as u8]); // out imm8, al
    a.mov(ESI, iterations);
    a.bind(lp);
    a.mov(ECX, 0x48)
        .mov(EAX, GUEST_SPEC_CTRL as u32)
        .mov(EDX, 0);
    a.bytes(&[0x0f, 0x30, 0x0f, 0x32]); // wrmsr; rdmsr
    a.bytes(&[0x66, 0x4e]); // dec esi
    a.jump(0x75, lp);
    a.bytes(&[0xe6, PORT_LOOP_END as u8, 0xf4]); // out; hlt
    a.finish()
}

/// Sum of every vCPU's VM exits, from KVM's debugfs statistics.
fn vm_exits() -> Result<u64, VmmError> {
    let p = "/sys/kernel/debug/kvm/exits";
    let s = fs::read_to_string(p).map_err(|e| VmmError::Io(p.into(), e))?;
    s.trim()
        .parse()
        .map_err(|e| VmmError::Pool(p.into(), format!("{e}")))
}

/// One `name: value` field of the module's debug view for vCPU `id`.
fn debug_field(vm: &VmFd, id: u64, field: &str) -> Result<String, VmmError> {
    use std::os::fd::AsRawFd;
    let p = format!(
        "/sys/kernel/debug/kvm/{}-{}/vcpu{id}/force_spec_ctrl",
        std::process::id(),
        vm.as_raw_fd()
    );
    let s = fs::read_to_string(&p).map_err(|e| VmmError::Io(p.clone(), e))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| VmmError::Pool(p, format!("no field {field}")))
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(u64::MAX)
}

/// What one vCPU did and what the host saw.
#[derive(Default)]
struct Counts {
    virtual_msr_exits: u64,
    spec_ctrl_exits: u64,
    loop_start: u64,
    loop_exits: u64,
}

/// The VMM's own MSR filter, as a real VMM has one: here it denies the
/// guest's writes of IA32_BIOS_SIGN_ID (microcode updates), which the guest
/// never makes; the crate's ranges are merged into it.
fn vmm_filter() -> MsrFilter {
    MsrFilter {
        default_allow: true,
        ranges: vec![Range {
            flags: MsrFilterRangeFlags::WRITE,
            base: 0x8b,
            bitmap: vec![0; bitmap_len(1)],
            msr_count: 1,
        }],
    }
}

struct Vm {
    vm: VmFd,
    vcpus: Vec<VcpuFd>,
    forcing: VmForcing,
}

impl Vm {
    /// Run the forcing state's actions, in order.
    fn apply(&self, actions: &[Action]) -> Result<(), VmmError> {
        for a in actions {
            match *a {
                Action::SetVm(c) => self.vm.set_force_spec_ctrl(c)?,
                Action::SetVcpu { vcpu, config } => self.vcpu(vcpu)?.set_force_spec_ctrl(config)?,
                Action::ClearVcpu { vcpu } => self.vcpu(vcpu)?.clear_force_spec_ctrl()?,
                other => {
                    return Err(VmmError::Pool(
                        "forcing".into(),
                        format!("unknown action {other:?}"),
                    ))
                }
            }
        }
        Ok(())
    }

    fn vcpu(&self, id: u32) -> Result<&VcpuFd, VmmError> {
        self.vcpus
            .get(id as usize)
            .ok_or_else(|| VmmError::Guest(u64::from(id), "no such vCPU".into()))
    }

    /// A report changed: the vCPU's forcing, at once.
    fn report(&mut self, id: u32, report: u64) -> Result<(), VmmError> {
        let err = |e: kvm_force_spec_ctrl_vmm::forcing::ForcingError| {
            VmmError::Guest(u64::from(id), e.to_string())
        };
        let actions = self.forcing.set_report(id, report).map_err(err)?;
        let conflicts = self.forcing.report_conflicts(id).map_err(err)?;
        if !conflicts.is_empty() {
            println!("KFSC-VMM vcpu={id} note: the operator forces {conflicts} off, which the report needs");
        }
        self.apply(&actions)
    }

    fn run(&mut self, id: u32, msrs: &mut VcpuMsrs, counts: &mut Counts) -> Result<(), VmmError> {
        loop {
            let mut report = None;
            let fd = self
                .vcpus
                .get_mut(id as usize)
                .ok_or_else(|| VmmError::Guest(u64::from(id), "no such vCPU".into()))?;
            match fd.run().map_err(|e| VmmError::Kvm("KVM_RUN", e))? {
                VcpuExit::X86Rdmsr(exit) => {
                    if exit.index == 0x48 {
                        counts.spec_ctrl_exits += 1;
                    }
                    counts.virtual_msr_exits += 1;
                    match msrs.read(exit.index) {
                        Ok(v) => *exit.data = v,
                        Err(_) => *exit.error = 1,
                    }
                }
                VcpuExit::X86Wrmsr(exit) => {
                    if exit.index == 0x48 {
                        counts.spec_ctrl_exits += 1;
                    }
                    counts.virtual_msr_exits += 1;
                    let (index, data) = (exit.index, exit.data);
                    match msrs.write(index, data) {
                        Ok(WriteEffect::Report(r)) => report = Some(r),
                        Ok(_) => {}
                        Err(_) => *exit.error = 1,
                    }
                }
                VcpuExit::IoOut(PORT_LOOP_START, _) => counts.loop_start = vm_exits()?,
                VcpuExit::IoOut(PORT_LOOP_END, _) => {
                    counts.loop_exits = vm_exits()?.saturating_sub(counts.loop_start)
                }
                VcpuExit::Hlt => return Ok(()),
                other => {
                    return Err(VmmError::Guest(
                        u64::from(id),
                        format!("unexpected exit {other:?}"),
                    ))
                }
            }
            if let Some(r) = report {
                self.report(id, r)?;
            }
        }
    }
}

fn run(args: Args) -> Result<bool, VmmError> {
    let text = fs::read_to_string(&args.pool)
        .map_err(|e| VmmError::Io(args.pool.display().to_string(), e))?;
    let pool: Pool = serde_json::from_str(&text)
        .map_err(|e| VmmError::Pool(args.pool.display().to_string(), e.to_string()))?;
    let host = pool
        .host(&args.host)
        .ok_or_else(|| VmmError::Pool(args.host.clone(), "no such host in the pool".into()))?;
    let adv = pool.decide().advertised;
    // What this host forces for every guest, from the model the guest is
    // given (the pool's default policy).
    let pool_forced = match &args.model_of {
        None => SpecCtrl::empty(),
        Some(m) => {
            let model = GuestModel::of_host(
                pool.host(m)
                    .ok_or_else(|| VmmError::Pool(m.clone(), "no such host in the pool".into()))?,
            );
            let d = pool
                .default_policy(model, Opts::default())
                .map_err(|e| VmmError::Pool(args.pool.display().to_string(), e.to_string()))?;
            d.forced(&host.name).unwrap_or_default()
        }
    };

    let kvm_fd = Kvm::new().map_err(|e| VmmError::Kvm("/dev/kvm", e))?;
    let supported = kvm::supported(&kvm_fd)?;
    let operator = args
        .operator
        .check_supported(supported)
        .map_err(kvm::Error::from)?;
    // What the pool's model of this host forces must be forceable here.
    let unsupported = host.supported - supported;
    if !unsupported.is_empty() {
        return Err(VmmError::Pool(
            args.host,
            format!("the pool says it forces {unsupported}, which this host cannot"),
        ));
    }
    println!(
        "KFSC-VMM host={} supported={supported} advertised={} operator={operator} pool_default={pool_forced}",
        host.name,
        report_name(adv.mitigations()),
    );

    let vm = kvm_fd
        .create_vm()
        .map_err(|e| VmmError::Kvm("KVM_CREATE_VM", e))?;
    // SAFETY: A fresh anonymous private mapping, owned by this process for
    // its lifetime (never unmapped: the VM uses it until exit).
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            MEM_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return Err(VmmError::Io("mmap".into(), std::io::Error::last_os_error()));
    }
    let code = guest_code(args.iterations).map_err(|e| VmmError::Pool("guest code".into(), e))?;
    // SAFETY: `mem` is MEM_SIZE writable bytes and the code fits after
    // CODE_GPA (a few dozen bytes).
    unsafe {
        std::ptr::copy_nonoverlapping(
            code.as_ptr(),
            mem.cast::<u8>().add(CODE_GPA as usize),
            code.len(),
        )
    };
    let region = kvm_userspace_memory_region {
        slot: 0,
        guest_phys_addr: 0,
        memory_size: MEM_SIZE as u64,
        userspace_addr: mem as u64,
        flags: 0,
    };
    // SAFETY: The region is the mapping above, valid as long as the VM.
    unsafe { vm.set_user_memory_region(region) }
        .map_err(|e| VmmError::Kvm("KVM_SET_USER_MEMORY_REGION", e))?;
    // One MSR filter for the VM: the VMM's own, merged with the crate's.
    kvm::enable_msr_exits(&vm, 0)?;
    let filter = vmm_filter().merge(&MsrFilter::virtual_msrs(adv))?;
    filter.install(&vm)?;

    let (forcing, first) = VmForcing::new(operator, host.clone(), pool_forced)
        .map_err(|e| VmmError::Pool(args.host.clone(), e.to_string()))?;
    if !forcing.conflicts().is_empty() {
        println!(
            "KFSC-VMM note: the operator forces {} off, which this host's default needs",
            forcing.conflicts()
        );
    }
    let mut vm = Vm {
        vm,
        vcpus: Vec::new(),
        forcing,
    };
    vm.apply(&first)?;

    // (report asked for, never reports)
    let plan = [
        (msr::Mitigation::BhbClearSeqS.bit(), false),
        (msr::Mitigation::RetpolineS.bit(), false),
        (msr::MITIGATION_BITS, true),
    ];
    // The host's CPUID as KVM supports it: the guest has IA32_SPEC_CTRL
    // (without it, KVM gives its accesses #GP, as on real hardware).
    let cpuid = kvm_fd
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| VmmError::Kvm("KVM_GET_SUPPORTED_CPUID", e))?;
    let mut ok = true;
    for (id, &(ask, silent)) in (0u32..).zip(plan.iter()) {
        let fd = vm
            .vm
            .create_vcpu(u64::from(id))
            .map_err(|e| VmmError::Kvm("KVM_CREATE_VCPU", e))?;
        fd.set_cpuid2(&cpuid)
            .map_err(|e| VmmError::Kvm("KVM_SET_CPUID2", e))?;
        let mut sregs = fd
            .get_sregs()
            .map_err(|e| VmmError::Kvm("KVM_GET_SREGS", e))?;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        fd.set_sregs(&sregs)
            .map_err(|e| VmmError::Kvm("KVM_SET_SREGS", e))?;
        let mut regs = fd
            .get_regs()
            .map_err(|e| VmmError::Kvm("KVM_GET_REGS", e))?;
        regs.rip = CODE_GPA;
        regs.rflags = 2;
        regs.rbx = ask;
        regs.rdi = u64::from(silent);
        fd.set_regs(&regs)
            .map_err(|e| VmmError::Kvm("KVM_SET_REGS", e))?;
        // The CPU model is final (CPUID set): its IA32_ARCH_CAPABILITIES
        // is what the guest is told.
        let arch_caps = fd.arch_capabilities()?;
        let mut msrs = VcpuMsrs::new(adv, arch_caps);
        vm.vcpus.push(fd);
        let actions = vm.forcing.add_vcpu(id);
        vm.apply(&actions)?;
        let mut counts = Counts::default();
        vm.run(id, &mut msrs, &mut counts)?;

        let report = msrs.report();
        let want_report = if silent { 0 } else { ask & adv.mitigations() };
        // One exit per virtual-MSR access the guest made: ARCH_CAPABILITIES,
        // and with it advertised the two enumeration MSRs and the report.
        let want_exits = match (silent, adv.any()) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 4,
        };
        let eff = vm
            .forcing
            .vcpu_config(id)
            .map_err(|e| VmmError::Guest(u64::from(id), e.to_string()))?;
        let want_hw = eff.effective(GUEST_SPEC_CTRL);
        let hw = hex(&debug_field(&vm.vm, u64::from(id), "hw_now")?);
        let own = debug_field(&vm.vm, u64::from(id), "vcpu_override")?;
        let forced = host.forcing(report).forced;
        let want_own = match combine(vm.forcing.vm_config(), forced).forcing {
            VcpuForcing::Own(c) => format!("{:#x} {:#x}", c.mask().bits(), c.value().bits()),
            _ => "none".to_string(),
        };
        let pass = report == want_report
            && counts.virtual_msr_exits == want_exits
            && counts.spec_ctrl_exits == 0
            && counts.loop_exits <= args.max_loop_exits
            && hw == want_hw
            && own == want_own;
        println!(
            "KFSC-VMM vcpu={id} report={} forced={forced} own_config={own} (want {want_own}) \
             hw={hw:#x} (want {want_hw:#x}) virtual_msr_exits={} (want {want_exits}) \
             spec_ctrl_msr_exits={} loop_vm_exits={} per {} WRMSR+RDMSR: {}",
            report_name(report),
            counts.virtual_msr_exits,
            counts.spec_ctrl_exits,
            counts.loop_exits,
            args.iterations,
            if pass { "ok" } else { "WRONG" }
        );
        ok &= pass;

        // Migration: the state round-trips through JSON into a fresh vCPU's
        // virtual MSRs with the same CPU model; a destination whose model
        // tells the guest another IA32_ARCH_CAPABILITIES refuses it and
        // stays as it was; a reset clears the report.
        let saved = serde_json::to_string(&msrs.save())
            .map_err(|e| VmmError::Pool("save".into(), e.to_string()))?;
        let parsed: msr::VcpuMsrState = serde_json::from_str(&saved)
            .map_err(|e| VmmError::Pool("restore".into(), e.to_string()))?;
        let mut dest = VcpuMsrs::new(adv, arch_caps);
        let migrated = dest.restore(parsed).is_ok() && dest.report() == report;
        // What the guest reads of IA32_ARCH_CAPABILITIES is only checked
        // when the virtual MSRs are advertised (else KVM answers it).
        let mut other = VcpuMsrs::new(adv, arch_caps ^ arch_cap::RRSBA);
        let refused = match other.restore(parsed) {
            Err(e) => {
                println!("KFSC-VMM vcpu={id} a destination with another CPU model refuses: {e}");
                other.report() == 0
            }
            Ok(_) => false,
        };
        dest.reset();
        let reset_ok = dest.report() == 0;
        println!(
            "KFSC-VMM vcpu={id} state {saved} migrates: {}; another model refuses it: {}; reset clears it: {}",
            if migrated { "ok" } else { "WRONG" },
            if refused { "ok" } else { "WRONG" },
            if reset_ok { "ok" } else { "WRONG" }
        );
        ok &= migrated && refused && reset_ok;
    }
    Ok(ok)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => {
            println!("KFSC-VMM-RESULT PASS");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("KFSC-VMM-RESULT FAIL");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("KFSC-VMM-RESULT FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}
