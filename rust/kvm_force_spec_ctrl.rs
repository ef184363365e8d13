// SPDX-License-Identifier: GPL-2.0

//! KVM_CAP_FORCE_SPEC_CTRL: force bits of KVM guests' IA32_SPEC_CTRL.
//!
//! The module registers as KVM's IA32_SPEC_CTRL provider (see [`kvm`]),
//! validates configurations with the pure [`policy`], and enforces them on
//! each vCPU's VM-entry path through a backend ([`backend`]).
//!
//! Data flow of a VM-wide change: `KVM_ENABLE_CAP` on the VM fd ->
//! [`ForceSpecCtrl::vm_enable_cap`] publishes the configuration in the VM's
//! [`Latch`] (a new generation), then kicks every vCPU and waits for them to
//! leave guest mode -> each vCPU, in [`ForceSpecCtrl::vcpu_enter`] with IRQs
//! off, sees a new generation with one load and applies the configuration
//! before it runs guest code again. A vCPU's own configuration takes the
//! same way through the vCPU's latch.

use kernel::{
    prelude::*,
    seq_file::{seq_print, SeqFile},
    sync::{
        atomic::{Acquire, Atomic, AtomicFlag, Relaxed, Release},
        new_mutex, Arc, ArcBorrow, Mutex,
    },
    time::{delay::fsleep, Delta},
    uaccess::{UserPtr, UserSlice},
};

// Public so that the pure files can keep `pub` items, as the host test crate
// (rust/host) needs them.
/// The ABI numbers, generated from `include/uapi/linux/kvm_force_spec_ctrl.h`.
#[path = "abi_generated.rs"]
pub mod abi;
pub mod backend;
pub mod kvm;
pub mod policy;
pub mod protocol;

use backend::VcpuHw;
use policy::{Backend, Config, Request, Scope};
use protocol::Latch;

module! {
    type: Module,
    name: "kvm_force_spec_ctrl",
    authors: ["kvm-force-spec-ctrl developers"],
    description: "KVM_CAP_FORCE_SPEC_CTRL: force IA32_SPEC_CTRL bits of KVM guests",
    license: "GPL",
    params: {
        intercept: bool {
            default: false,
            description: "Intercept guest IA32_SPEC_CTRL accesses even where VMX can virtualize the MSR or SVM has V_SPEC_CTRL (for comparison); read at VM creation",
        },
    },
}

/// The module: owns the provider registration.
struct Module {
    _registration: kvm::Registration<ForceSpecCtrl>,
}

impl kernel::Module for Module {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Probing writes the host's MSR: once, here, and never again from a
        // path userspace can reach. Before registering, so that no hook can
        // read the value before it is set.
        HOST_SUPPORTED.store(policy::supported(kvm::host_accepts), Relaxed);
        // SAFETY: The registration lives in `Module`, which is dropped only
        // by the module's exit path.
        let registration = unsafe { kvm::Registration::new() }?;
        pr_info!(
            "registered: host IA32_SPEC_CTRL {}, supported {:#x}, backend {}\n",
            if kvm::host_has_msr() {
                "present"
            } else {
                "absent"
            },
            host_supported(),
            host_backend().name()
        );
        Ok(Module {
            _registration: registration,
        })
    }
}

/// The bits this host can force on, probed once by [`Module::init`]
/// (registration happens after the store, and KVM's registration lock
/// orders it before every hook).
static HOST_SUPPORTED: Atomic<u64> = Atomic::new(0);

/// The bits this host can force on.
fn host_supported() -> u64 {
    HOST_SUPPORTED.load(Relaxed)
}

/// What KVM reports of the host now; facts kvm.ko cached when the vendor
/// module registered, so asking never calls into the vendor module.
fn host_facts() -> policy::HostFacts {
    policy::HostFacts {
        has_msr: kvm::host_has_msr(),
        vendor: kvm::vendor(),
        has_virt: kvm::has_virt(),
        has_host_copy: kvm::has_host_copy(),
        prefer_intercept: module_parameters::intercept.value(),
    }
}

/// The backend for VMs created now.
fn host_backend() -> Backend {
    policy::choose_backend(host_facts())
}

/// The kernel's atomics as the update protocol's words.
impl protocol::Word for Atomic<u64> {
    fn new(v: u64) -> Self {
        Atomic::new(v)
    }
    fn load_acquire(&self) -> u64 {
        self.load(Acquire)
    }
    fn load_relaxed(&self) -> u64 {
        self.load(Relaxed)
    }
    fn store_release(&self, v: u64) {
        self.store(v, Release)
    }
}

/// A configuration as published in a latch: `[mask, value]`.
fn config_words(c: Config) -> [u64; 2] {
    [c.mask(), c.value()]
}

/// The configuration in a latch's words; a snapshot is only ever published
/// from a valid [`Config`], so the fallback is unreachable.
fn config_from(w: [u64; 2]) -> Config {
    Config::new(w[0], w[1]).unwrap_or(Config::OFF)
}

/// A vCPU's own configuration as published: `[present, mask, value]`.
fn own_words(c: Option<Config>) -> [u64; 3] {
    match c {
        Some(c) => [1, c.mask(), c.value()],
        None => [0, 0, 0],
    }
}

fn own_from(w: [u64; 3]) -> Option<Config> {
    (w[0] != 0).then(|| config_from([w[1], w[2]]))
}

/// Per-VM state.
#[pin_data]
struct VmState {
    /// Host facts, fixed at VM creation.
    supported: u64,
    backend: Backend,
    /// The VM-wide configuration; read lock-free on the VM-entry path.
    config: Latch<Atomic<u64>, 2>,
    /// Serialises the writers of `config` (VM-fd `KVM_ENABLE_CAP`), across
    /// publish and kick, so that changes reach the vCPUs in order.
    #[pin]
    writer: Mutex<()>,
}

/// What a vCPU enforced at a VM entry: one snapshot for the debug view.
#[derive(Clone, Copy, Default)]
struct EntryRecord {
    /// The VM generation and the own generation in force.
    vm_generation: u64,
    own_generation: u64,
    /// The configuration enforced.
    mask: u64,
    value: u64,
    /// The guest view and the value in force in the guest (what KVM loaded
    /// into IA32_SPEC_CTRL, with V_SPEC_CTRL's host copy ORed in).
    guest: u64,
    effective: u64,
    /// Whether the entry was into L2 (vmcs02 current).
    guest_mode: u64,
}

impl EntryRecord {
    const WORDS: usize = 7;

    fn words(&self) -> [u64; Self::WORDS] {
        [
            self.vm_generation,
            self.own_generation,
            self.mask,
            self.value,
            self.guest,
            self.effective,
            self.guest_mode,
        ]
    }

    fn from_words(w: [u64; Self::WORDS]) -> Self {
        EntryRecord {
            vm_generation: w[0],
            own_generation: w[1],
            mask: w[2],
            value: w[3],
            guest: w[4],
            effective: w[5],
            guest_mode: w[6],
        }
    }
}

/// Per-vCPU state.
///
/// # Invariants
///
/// Everything but the latches' readers is touched only by the vCPU's own
/// thread, in hooks with the vCPU loaded (serialised by KVM's vcpu->mutex or
/// running inside KVM_RUN); the fields are atomics so that the debug view
/// can read them from any task. `record` is written only by the entry hook,
/// `own_config` only by the vCPU's own `KVM_ENABLE_CAP`.
#[pin_data]
struct VcpuState {
    vm: Arc<VmState>,
    /// The vCPU's own configuration (contract item 5), if any.
    own_config: Latch<Atomic<u64>, 3>,
    /// The VM and own generations the vCPU applied.
    seen_vm: Atomic<u64>,
    seen_own: Atomic<u64>,
    /// The configuration applied (backend calls between entries use it).
    applied_mask: Atomic<u64>,
    applied_value: Atomic<u64>,
    /// Whether the module owns the vCPU's IA32_SPEC_CTRL (forces bits).
    owned: AtomicFlag,
    /// Whether the owned MSR is intercepted (the last `set_intercept`).
    intercepted: AtomicFlag,
    /// The guest view when it lives in software.
    sw_view: Atomic<u64>,
    /// Whether the current VMCS was programmed since it became current.
    programmed: AtomicFlag,
    /// The last VM entry at which the entry hook ran (debug view): the
    /// first entry after each change, and the first after a debug-view
    /// read asked for one ([`kvm::Vcpu::request_enter`]).
    record: Latch<Atomic<u64>, { EntryRecord::WORDS }>,
    /// VM entries that ran the entry hook; incremented after `record` is
    /// published.
    entries: Atomic<u64>,
}

/// [`VcpuHw`] for a loaded vCPU: KVM's helpers, plus what the module keeps
/// next to them.
struct Hw<'a> {
    vcpu: &'a kvm::LoadedVcpu<'a>,
    state: &'a VcpuState,
}

impl VcpuHw for Hw<'_> {
    fn owned(&self) -> bool {
        self.state.owned.load(Relaxed)
    }
    fn own(&self, own: bool) {
        self.state.owned.store(own, Relaxed);
        self.vcpu.own(own);
    }
    fn hw(&self) -> u64 {
        self.vcpu.hw()
    }
    fn set_hw(&self, value: u64) {
        self.vcpu.set_hw(value)
    }
    fn set_intercept(&self, intercept: bool) {
        self.state.intercepted.store(intercept, Relaxed);
        self.vcpu.set_intercept(intercept)
    }
    fn intercepted(&self) -> bool {
        self.state.intercepted.load(Relaxed)
    }
    fn set_host_copy(&self, enable: bool, mask: u64, value: u64) {
        self.vcpu.set_host_copy(enable, mask, value)
    }
    fn host_copy(&self) -> u64 {
        self.vcpu.host_copy()
    }
    fn cpu_has_host_copy(&self) -> bool {
        kvm::has_host_copy()
    }
    fn set_virt(&self, enable: bool) {
        self.vcpu.set_virt(enable)
    }
    fn write_virt(&self, mask: u64, shadow: u64) {
        self.vcpu.write_virt(mask, shadow)
    }
    fn read_shadow(&self) -> u64 {
        self.vcpu.read_shadow()
    }
    fn sw_view(&self) -> u64 {
        self.state.sw_view.load(Relaxed)
    }
    fn set_sw_view(&self, value: u64) {
        self.state.sw_view.store(value, Relaxed)
    }
    fn vmcs_programmed(&self) -> bool {
        self.state.programmed.load(Relaxed)
    }
    fn set_vmcs_programmed(&self, programmed: bool) {
        self.state.programmed.store(programmed, Relaxed)
    }
}

impl VcpuState {
    fn hw<'a>(&'a self, vcpu: &'a kvm::LoadedVcpu<'a>) -> Hw<'a> {
        Hw { vcpu, state: self }
    }

    /// The configuration enforced now.
    fn applied(&self) -> Config {
        Config::new(
            self.applied_mask.load(Relaxed),
            self.applied_value.load(Relaxed),
        )
        .unwrap_or(Config::OFF)
    }

    /// Publish what this entry enforces, then count the entry.
    fn record(&self, hw: &Hw<'_>, backend: Backend) {
        let guest = backend::guest_view(hw, backend);
        let effective = backend::in_force(hw, backend);
        let r = EntryRecord {
            vm_generation: self.seen_vm.load(Relaxed),
            own_generation: self.seen_own.load(Relaxed),
            mask: self.applied_mask.load(Relaxed),
            value: self.applied_value.load(Relaxed),
            guest,
            effective,
            guest_mode: u64::from(hw.vcpu.guest_mode()),
        };
        self.record.publish(r.words());
        // After the record: a reader that sees the count sees the record.
        self.entries
            .store(self.entries.load(Relaxed).wrapping_add(1), Release);
    }
}

struct ForceSpecCtrl;

/// A `KVM_ENABLE_CAP` request, or its error: `EOPNOTSUPP` for a bit to force
/// on a host without a backend (nothing is supported there, and forcing is
/// not possible at all rather than invalid: contract item 1), else `EINVAL`.
fn parse(args: &[u64; 4], scope: Scope, vm: &VmState) -> Result<Request> {
    match policy::parse_enable_cap(args, scope, vm.supported) {
        Ok(request) => Ok(request),
        Err(policy::Invalid::Unsupported) if vm.backend == Backend::None => Err(EOPNOTSUPP),
        Err(_) => Err(EINVAL),
    }
}

/// How long a debug-view read waits for the vCPU's next entry: a short spin
/// (a kicked vCPU in KVM_RUN enters again within microseconds), then at most
/// `SAMPLE_POLLS` sleeps of `SAMPLE_POLL` (100 ms in all) for a vCPU that
/// is preempted or halted.
const SAMPLE_SPINS: usize = 10_000;
const SAMPLE_POLL: Delta = Delta::from_micros(50);
const SAMPLE_POLLS: usize = 2000;

impl ForceSpecCtrl {
    /// The slow path of the entry hook: bring the vCPU's enforcement, in the
    /// current VMCS, up to date with the vCPU's own configuration, else the
    /// VM's.
    fn apply(hw: &Hw<'_>, state: &VcpuState) {
        let (vm_generation, vm_config) = state.vm.config.read();
        let (own_generation, own) = state.own_config.read();
        let config = if hw.vcpu.vm_protected_state() {
            // Protected state (SEV-ES): never owned. Requests to force are
            // refused; this covers a configuration published before the VM
            // became protected (vCPU creation refuses that too).
            Config::OFF
        } else {
            own_from(own).unwrap_or(config_from(vm_config))
        };
        backend::enter(hw, state.vm.backend, config);
        state.applied_mask.store(config.mask(), Relaxed);
        state.applied_value.store(config.value(), Relaxed);
        state.seen_vm.store(vm_generation, Relaxed);
        state.seen_own.store(own_generation, Relaxed);
    }
}

#[vtable]
impl kvm::Provider for ForceSpecCtrl {
    const NAME: &'static CStr = c"force_spec_ctrl";
    const CAP: u32 = abi::KVM_CAP_FORCE_SPEC_CTRL;
    const DEV_IOCTL: u32 = abi::KVM_GET_SUPPORTED_FORCE_SPEC_CTRL;

    type VmData = Arc<VmState>;
    type VcpuData = Pin<KBox<VcpuState>>;

    fn check_extension(_vm: Option<ArcBorrow<'_, VmState>>) -> i32 {
        i32::from(policy::capable(host_facts()))
    }

    fn dev_ioctl(arg: usize) -> Result<isize> {
        let mut writer = UserSlice::new(UserPtr::from_addr(arg), size_of::<u64>()).writer();
        writer.write(&host_supported())?;
        Ok(0)
    }

    fn vm_init(_vm: &kvm::Vm) -> Result<Arc<VmState>> {
        Arc::pin_init(
            pin_init!(VmState {
                supported: host_supported(),
                backend: host_backend(),
                config: Latch::new(config_words(Config::OFF)),
                writer <- new_mutex!((), "VmState::writer"),
            }),
            // Per-VM state is the VM's: charged to its memory cgroup.
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn vm_enable_cap(vm: &kvm::Vm, state: ArcBorrow<'_, VmState>, args: &[u64; 4]) -> Result {
        let config = match parse(args, Scope::Vm, &state)? {
            Request::Set(config) => config,
            Request::Clear => return Err(EINVAL),
        };
        // KVM holds the VM's lock: SEV-ES cannot begin in between. Turning
        // forcing off stays possible, so that a VM configured before
        // KVM_SEV_ES_INIT can create its vCPUs after all.
        if config.is_active() && (state.backend == Backend::None || vm.protected_state()) {
            return Err(EOPNOTSUPP);
        }
        let _writer = state.writer.lock();
        state.config.publish(config_words(config));
        // Contract item 4: on return, no vCPU runs under the old configuration.
        vm.kick_all_vcpus();
        Ok(())
    }

    fn vcpu_create(vcpu: &kvm::Vcpu, vm: ArcBorrow<'_, VmState>) -> Result<Pin<KBox<VcpuState>>> {
        // A VM-wide configuration set before KVM_SEV_ES_INIT cannot be
        // enforced on this vCPU: refuse it rather than run it unforced.
        if vcpu.vm_protected_state() && config_from(vm.config.read().1).is_active() {
            return Err(EOPNOTSUPP);
        }
        KBox::pin_init(
            pin_init!(VcpuState {
                vm: vm.into(),
                own_config: Latch::new(own_words(None)),
                seen_vm: Atomic::new(0),
                seen_own: Atomic::new(0),
                applied_mask: Atomic::new(0),
                applied_value: Atomic::new(0),
                owned: AtomicFlag::new(false),
                intercepted: AtomicFlag::new(false),
                sw_view: Atomic::new(0),
                programmed: AtomicFlag::new(false),
                record: Latch::new(EntryRecord::default().words()),
                entries: Atomic::new(0),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn vcpu_enable_cap(
        vcpu: &kvm::LoadedVcpu<'_>,
        state: Pin<&VcpuState>,
        args: &[u64; 4],
    ) -> Result {
        let own = match parse(args, Scope::Vcpu, &state.vm)? {
            Request::Set(config) => Some(config),
            Request::Clear => None,
        };
        if own.is_some_and(|c| c.is_active())
            && (state.vm.backend == Backend::None || vcpu.vm_protected_state())
        {
            return Err(EOPNOTSUPP);
        }
        // The vCPU is in this ioctl, not in the guest (KVM holds its mutex),
        // and KVM runs the entry hook before its next entry, which applies
        // the change: contract item 5 needs no kick.
        state.own_config.publish(own_words(own));
        Ok(())
    }

    fn vcpu_reset(vcpu: &kvm::LoadedVcpu<'_>, state: Pin<&VcpuState>, _init_event: bool) {
        // KVM reset the guest's IA32_SPEC_CTRL to 0; enforce over it.
        backend::reset(&state.hw(vcpu), state.vm.backend, state.applied());
    }

    fn vcpu_enter(vcpu: &kvm::LoadedVcpu<'_>, state: Pin<&VcpuState>) {
        // KVM calls this only after the events that may change the
        // configuration or the current VMCS, or when a debug-view read asked
        // for a record: never at the other entries, so forcing costs nothing
        // per VM exit.
        let changed = state.vm.config.generation() != state.seen_vm.load(Relaxed)
            || state.own_config.generation() != state.seen_own.load(Relaxed);
        let hw = state.hw(vcpu);
        if backend::needs_enter(&hw, changed) {
            Self::apply(&hw, &state);
        }
        state.record(&hw, state.vm.backend);
    }

    fn vmcs_switch(vcpu: &kvm::LoadedVcpu<'_>, state: Pin<&VcpuState>) {
        backend::vmcs_switch(&state.hw(vcpu), state.vm.backend);
    }

    fn get_msr(
        vcpu: &kvm::LoadedVcpu<'_>,
        state: Pin<&VcpuState>,
        _host_initiated: bool,
    ) -> Result<u64> {
        Ok(backend::guest_view(&state.hw(vcpu), state.vm.backend))
    }

    fn set_msr(
        vcpu: &kvm::LoadedVcpu<'_>,
        state: Pin<&VcpuState>,
        value: u64,
        _host_initiated: bool,
    ) -> Result {
        if backend::set_guest(&state.hw(vcpu), state.vm.backend, state.applied(), value) {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    fn vcpu_show(vcpu: &kvm::Vcpu, state: Pin<&VcpuState>, m: &SeqFile) {
        // The guest view lives in the current VMCS, which only the vCPU's
        // thread can read: ask the vCPU to record its next entry, and wait
        // for it a bounded time if the vCPU is in KVM_RUN. Otherwise the
        // request stays pending, and the vCPU's next entry records.
        let before = state.entries.load(Acquire);
        let recorded = || state.entries.load(Acquire) != before;
        let fresh = vcpu.request_enter()
            && ((0..SAMPLE_SPINS).any(|_| {
                core::hint::spin_loop();
                recorded()
            }) || (0..SAMPLE_POLLS).any(|_| {
                fsleep(SAMPLE_POLL);
                recorded()
            }));
        // Entries first: the record read next is at least that recent.
        let entries = state.entries.load(Acquire);
        // Bounded: a vCPU publishing at every entry could keep a reader
        // retrying; the debug view then says so rather than spin.
        let Some((_, record)) = (0..1000).find_map(|_| state.record.try_read()) else {
            seq_print!(
                m,
                "busy: the vCPU records entries faster than they can be read\n"
            );
            return;
        };
        let r = EntryRecord::from_words(record);
        let (vm_generation, vm_config) = state.vm.config.read();
        let vm_config = config_from(vm_config);
        let (own_generation, own) = state.own_config.read();
        let (guest, effective) = if r.mask == 0 {
            // Not forcing: the vCPU is KVM's, whose value is the guest's;
            // the entry path records nothing then, to stay cheap.
            let v = vcpu.peek_hw();
            (v, v)
        } else {
            (r.guest, r.effective)
        };
        seq_print!(m, "backend: {}\n", state.vm.backend.name());
        // 1: SEV-ES or SEV-SNP, whose IA32_SPEC_CTRL is in the encrypted
        // VMSA: nothing is forced, every request is refused.
        seq_print!(
            m,
            "protected_state: {}\n",
            u8::from(vcpu.vm_protected_state())
        );
        seq_print!(m, "supported: {:#x}\n", state.vm.supported);
        seq_print!(m, "vm_mask: {:#x}\n", vm_config.mask());
        seq_print!(m, "vm_value: {:#x}\n", vm_config.value());
        seq_print!(m, "vm_generation: {}\n", vm_generation);
        match own_from(own) {
            Some(c) => seq_print!(m, "vcpu_override: {:#x} {:#x}\n", c.mask(), c.value()),
            None => seq_print!(m, "vcpu_override: none\n"),
        }
        seq_print!(m, "vcpu_generation: {}\n", own_generation);
        seq_print!(m, "mask: {:#x}\n", r.mask);
        seq_print!(m, "value: {:#x}\n", r.value);
        seq_print!(m, "applied_generation: {}\n", r.vm_generation);
        seq_print!(m, "applied_vcpu_generation: {}\n", r.own_generation);
        seq_print!(m, "guest: {:#x}\n", guest);
        seq_print!(m, "effective: {:#x}\n", effective);
        seq_print!(m, "guest_mode: {}\n", r.guest_mode);
        seq_print!(m, "entries: {}\n", entries);
        // 1: the record is of an entry after this read began; 0: of an
        // earlier one (the vCPU did not enter the guest meanwhile).
        seq_print!(m, "fresh: {}\n", u8::from(fresh));
        // What the vCPU runs with at its next entry (KVM's value, saved at
        // its last exit, with V_SPEC_CTRL's host copy ORed in, the host's own
        // value as this CPU has it now): live, unlike the record.
        let host_copy =
            if state.vm.backend.sets_host_copy(kvm::has_host_copy()) && state.owned.load(Relaxed) {
                vcpu.peek_host_copy()
            } else {
                0
            };
        seq_print!(m, "hw_now: {:#x}\n", vcpu.peek_hw() | host_copy);
    }
}
