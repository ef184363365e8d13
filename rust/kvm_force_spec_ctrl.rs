// SPDX-License-Identifier: GPL-2.0

//! KVM_CAP_FORCE_SPEC_CTRL: force bits of KVM guests' IA32_SPEC_CTRL.
//!
//! The module registers as KVM's IA32_SPEC_CTRL provider (see [`kvm`]),
//! validates configurations with the pure [`policy`], and enforces them on
//! each vCPU's VM-entry path through a backend ([`backend`]).
//!
//! Data flow of a VM-wide change: `KVM_ENABLE_CAP` on the VM fd ->
//! [`ForceSpecCtrl::vm_enable_cap`] stores the configuration and bumps the
//! VM's generation under the VM's lock, then kicks every vCPU and waits for
//! them to leave guest mode -> each vCPU, in [`ForceSpecCtrl::vcpu_enter`]
//! with IRQs off, sees a new generation and applies the configuration before
//! it runs guest code again.

use kernel::{
    prelude::*,
    seq_file::{seq_print, SeqFile},
    sync::{
        atomic::{Acquire, Atomic, AtomicFlag, Relaxed, Release},
        new_spinlock, Arc, ArcBorrow, SpinLock,
    },
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

use backend::VcpuHw;
use policy::{Backend, Config, Request, Scope};

module! {
    type: Module,
    name: "kvm_force_spec_ctrl",
    authors: ["kvm-force-spec-ctrl developers"],
    description: "KVM_CAP_FORCE_SPEC_CTRL: force IA32_SPEC_CTRL bits of KVM guests",
    license: "GPL",
    params: {
        intercept: bool {
            default: false,
            description: "Intercept guest IA32_SPEC_CTRL accesses even where VMX can virtualize the MSR (for comparison); read at VM creation",
        },
    },
}

/// The module: owns the provider registration.
struct Module {
    _registration: kvm::Registration<ForceSpecCtrl>,
}

impl kernel::Module for Module {
    fn init(_module: &'static ThisModule) -> Result<Self> {
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

/// The bits this host can force on.
fn host_supported() -> u64 {
    policy::supported(kvm::host_accepts)
}

/// The backend for VMs created now.
fn host_backend() -> Backend {
    policy::choose_backend(policy::HostFacts {
        has_msr: kvm::host_has_msr(),
        vendor: kvm::vendor(),
        has_virt: kvm::has_virt(),
        prefer_intercept: module_parameters::intercept.value(),
    })
}

/// Per-VM state.
#[pin_data]
struct VmState {
    /// Host facts, fixed at VM creation.
    supported: u64,
    backend: Backend,
    /// The VM-wide configuration; writers also bump `generation`.
    #[pin]
    config: SpinLock<Config>,
    /// Changes of `config`, so that a vCPU sees a change with one load.
    generation: Atomic<u64>,
}

impl VmState {
    /// The configuration and its generation, read consistently.
    fn read(&self) -> (u64, Config) {
        let config = self.config.lock();
        (self.generation.load(Relaxed), *config)
    }
}

/// The generation a vCPU has never applied.
const NEVER: u64 = u64::MAX;

/// Per-vCPU state. Written only by the vCPU's own thread (hooks with the vCPU
/// loaded, serialised by KVM's vcpu->mutex or running inside KVM_RUN);
/// atomics so that the debug view can read it from any task.
#[pin_data]
struct VcpuState {
    vm: Arc<VmState>,
    /// The vCPU's own configuration (contract item 5), if any.
    #[pin]
    own_config: SpinLock<Option<Config>>,
    /// The VM generation applied, or [`NEVER`] to force the slow path.
    applied_generation: Atomic<u64>,
    /// Whether the module owns the vCPU's IA32_SPEC_CTRL (forces bits).
    owned: AtomicFlag,
    /// The guest view, for the intercept backends.
    sw_view: Atomic<u64>,
    /// What is enforced now (debug view).
    applied_mask: Atomic<u64>,
    applied_value: Atomic<u64>,
    /// The guest view and hardware value at the last VM entry (debug view).
    last_guest: Atomic<u64>,
    last_effective: Atomic<u64>,
    entries: Atomic<u64>,
}

/// [`VcpuHw`] for a loaded vCPU: KVM's helpers, plus what the module keeps
/// next to them.
struct Hw<'a> {
    vcpu: &'a kvm::LoadedVcpu<'a>,
    owned: &'a AtomicFlag,
    sw_view: &'a Atomic<u64>,
}

impl VcpuHw for Hw<'_> {
    fn owned(&self) -> bool {
        self.owned.load(Relaxed)
    }
    fn own(&self, own: bool) {
        self.owned.store(own, Relaxed);
        self.vcpu.own(own);
    }
    fn hw(&self) -> u64 {
        self.vcpu.hw()
    }
    fn set_hw(&self, value: u64) {
        self.vcpu.set_hw(value)
    }
    fn set_intercept(&self, intercept: bool) {
        self.vcpu.set_intercept(intercept)
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
        self.sw_view.load(Relaxed)
    }
    fn set_sw_view(&self, value: u64) {
        self.sw_view.store(value, Relaxed)
    }
}

impl VcpuState {
    fn hw<'a>(&'a self, vcpu: &'a kvm::LoadedVcpu<'a>) -> Hw<'a> {
        Hw {
            vcpu,
            owned: &self.owned,
            sw_view: &self.sw_view,
        }
    }

    /// The configuration enforced now.
    fn applied(&self) -> Config {
        Config::new(
            self.applied_mask.load(Relaxed),
            self.applied_value.load(Relaxed),
        )
        .unwrap_or(Config::OFF)
    }
}

struct ForceSpecCtrl;

impl ForceSpecCtrl {
    /// Bring the vCPU's enforcement up to date: the vCPU's own
    /// configuration, else the VM's.
    fn apply(vcpu: &kvm::LoadedVcpu<'_>, state: &VcpuState) {
        let (generation, vm_config) = state.vm.read();
        let config = state.own_config.lock().unwrap_or(vm_config);
        backend::apply(&state.hw(vcpu), state.vm.backend, config);
        state.applied_mask.store(config.mask(), Relaxed);
        state.applied_value.store(config.value(), Relaxed);
        state.applied_generation.store(generation, Release);
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
        i32::from(kvm::host_has_msr())
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
                config <- new_spinlock!(Config::OFF, "VmState::config"),
                generation: Atomic::new(0),
            }),
            GFP_KERNEL,
        )
    }

    fn vm_enable_cap(vm: &kvm::Vm, state: ArcBorrow<'_, VmState>, args: &[u64; 4]) -> Result {
        let config = match policy::parse_enable_cap(args, Scope::Vm, state.supported) {
            Ok(Request::Set(config)) => config,
            Ok(Request::Clear) | Err(_) => return Err(EINVAL),
        };
        if config.is_active() && state.backend == Backend::None {
            return Err(EOPNOTSUPP);
        }
        {
            let mut current = state.config.lock();
            *current = config;
            let generation = state.generation.load(Relaxed);
            state
                .generation
                .store(generation.wrapping_add(1) % NEVER, Release);
        }
        // Contract item 4: on return, no vCPU runs under the old configuration.
        vm.kick_all_vcpus();
        Ok(())
    }

    fn vcpu_create(_vcpu: &kvm::Vcpu, vm: ArcBorrow<'_, VmState>) -> Result<Pin<KBox<VcpuState>>> {
        KBox::pin_init(
            pin_init!(VcpuState {
                vm: vm.into(),
                own_config <- new_spinlock!(None, "VcpuState::own_config"),
                applied_generation: Atomic::new(NEVER),
                owned: AtomicFlag::new(false),
                sw_view: Atomic::new(0),
                applied_mask: Atomic::new(0),
                applied_value: Atomic::new(0),
                last_guest: Atomic::new(0),
                last_effective: Atomic::new(0),
                entries: Atomic::new(0),
            }),
            GFP_KERNEL,
        )
    }

    fn vcpu_enable_cap(
        vcpu: &kvm::LoadedVcpu<'_>,
        state: Pin<&VcpuState>,
        args: &[u64; 4],
    ) -> Result {
        let own = match policy::parse_enable_cap(args, Scope::Vcpu, state.vm.supported) {
            Ok(Request::Set(config)) => Some(config),
            Ok(Request::Clear) => None,
            Err(_) => return Err(EINVAL),
        };
        if own.is_some_and(|c| c.is_active()) && state.vm.backend == Backend::None {
            return Err(EOPNOTSUPP);
        }
        *state.own_config.lock() = own;
        // The vCPU is in this ioctl, not in the guest: apply it now, so
        // that the guest never runs under the previous configuration.
        Self::apply(vcpu, &state);
        Ok(())
    }

    fn vcpu_reset(vcpu: &kvm::LoadedVcpu<'_>, state: Pin<&VcpuState>, _init_event: bool) {
        // KVM reset the guest's IA32_SPEC_CTRL to 0; enforce over it.
        backend::reset(&state.hw(vcpu), state.vm.backend, state.applied());
    }

    fn vcpu_enter(vcpu: &kvm::LoadedVcpu<'_>, state: Pin<&VcpuState>) {
        if state.applied_generation.load(Relaxed) != state.vm.generation.load(Acquire) {
            Self::apply(vcpu, &state);
        }
        let hw = state.hw(vcpu);
        state
            .last_guest
            .store(backend::guest_view(&hw, state.vm.backend), Relaxed);
        state.last_effective.store(hw.hw(), Relaxed);
        state.entries.fetch_add(1, Relaxed);
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

    fn vcpu_show(state: Pin<&VcpuState>, m: &SeqFile) {
        let (generation, vm_config) = state.vm.read();
        let own = *state.own_config.lock();
        seq_print!(m, "backend: {}\n", state.vm.backend.name());
        seq_print!(m, "supported: {:#x}\n", state.vm.supported);
        seq_print!(m, "vm_mask: {:#x}\n", vm_config.mask());
        seq_print!(m, "vm_value: {:#x}\n", vm_config.value());
        seq_print!(m, "vm_generation: {}\n", generation);
        match own {
            Some(c) => seq_print!(m, "vcpu_override: {:#x} {:#x}\n", c.mask(), c.value()),
            None => seq_print!(m, "vcpu_override: none\n"),
        }
        seq_print!(m, "mask: {:#x}\n", state.applied_mask.load(Relaxed));
        seq_print!(m, "value: {:#x}\n", state.applied_value.load(Relaxed));
        seq_print!(
            m,
            "applied_generation: {}\n",
            state.applied_generation.load(Relaxed)
        );
        seq_print!(m, "guest: {:#x}\n", state.last_guest.load(Relaxed));
        seq_print!(m, "effective: {:#x}\n", state.last_effective.load(Relaxed));
        seq_print!(m, "entries: {}\n", state.entries.load(Relaxed));
    }
}
