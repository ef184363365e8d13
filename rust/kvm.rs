// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction of KVM's IA32_SPEC_CTRL provider API.
//!
//! C header: `arch/x86/include/asm/kvm_spec_ctrl_provider.h` (added to the
//! test kernel by `kernel/patches`, bound through `kernel::bindings`).
//!
//! This file is the module's only user of `bindings` and raw pointers: a
//! provider implements the safe [`Provider`] trait, and [`Registration`]
//! hands KVM a `struct kvm_spec_ctrl_provider` whose entries are the
//! trampolines of [`VTable`].
//!
//! KVM keeps, per VM bound to the provider and per vCPU of such a VM, one
//! opaque pointer: the [`ForeignOwnable`] form of [`Provider::VmData`] and
//! [`Provider::VcpuData`]. It is created by `vm_init`/`vcpu_create`, borrowed
//! by every other hook, and turned back and dropped by `vm_destroy`/
//! `vcpu_destroy`, which KVM calls exactly once, after every other hook of
//! that VM or vCPU has returned.

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_long, c_uint, c_ulong, c_void},
    module::this_module,
    prelude::*,
    seq_file::SeqFile,
    str::as_char_ptr_in_const_context,
    types::{ForeignOwnable, Opaque},
};

/// Shorthand for the borrowed form of a [`ForeignOwnable`].
pub type Borrowed<'a, T> = <T as ForeignOwnable>::Borrowed<'a>;

/// Whether the host CPU has IA32_SPEC_CTRL at all.
pub fn host_has_msr() -> bool {
    // SAFETY: A query of boot CPU features, valid in any context.
    unsafe { bindings::kvm_spec_ctrl_host_has_msr() }
}

/// Whether the host's IA32_SPEC_CTRL accepts `value` (tried on this CPU,
/// with the host's value restored). Writes the MSR: call it once, at module
/// initialisation, never from a path userspace can repeat.
pub fn host_accepts(value: u64) -> bool {
    // SAFETY: The function saves and restores the MSR with IRQs disabled.
    unsafe { bindings::kvm_spec_ctrl_host_accepts(value) }
}

/// Whether the CPU has VMX "virtualize IA32_SPEC_CTRL" and KVM's vendor
/// module can use it. False without a vendor module, or on SVM.
pub fn has_virt() -> bool {
    // SAFETY: Reads a fact kvm.ko copied when the vendor module registered;
    // any context.
    unsafe { bindings::kvm_spec_ctrl_has_virt() }
}

/// Whether the CPU has SVM V_SPEC_CTRL and KVM's vendor module lets a
/// provider set its host copy. False without a vendor module, or on VMX.
pub fn has_host_copy() -> bool {
    // SAFETY: As in `has_virt`.
    unsafe { bindings::kvm_spec_ctrl_has_host_copy() }
}

/// KVM's vendor module, as far as owning IA32_SPEC_CTRL goes.
pub fn vendor() -> crate::policy::Vendor {
    // SAFETY: As in `has_virt`.
    match unsafe { bindings::kvm_spec_ctrl_vendor() } {
        bindings::kvm_spec_ctrl_vendor_KVM_SPEC_CTRL_VMX => crate::policy::Vendor::Vmx,
        bindings::kvm_spec_ctrl_vendor_KVM_SPEC_CTRL_SVM => crate::policy::Vendor::Svm,
        _ => crate::policy::Vendor::None,
    }
}

/// A VM bound to the provider.
///
/// # Invariants
///
/// A `&Vm` is only handed out by [`VTable`] trampolines, for a `struct kvm`
/// that stays valid for the duration of the hook.
#[repr(transparent)]
pub struct Vm(Opaque<bindings::kvm>);

impl Vm {
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct kvm` bound to this provider for
    /// the whole lifetime `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::kvm) -> &'a Vm {
        // SAFETY: `Vm` is a transparent wrapper of `struct kvm`, valid for
        // `'a` by the caller's guarantee.
        unsafe { &*ptr.cast() }
    }

    /// Force every vCPU of the VM through [`Provider::vcpu_enter`] before it
    /// runs guest code again; returns once every vCPU that was in guest mode
    /// has left it.
    pub fn kick_all_vcpus(&self) {
        // SAFETY: `self.0` is a valid bound VM by the type invariant.
        unsafe { bindings::kvm_spec_ctrl_kick_vm(self.0.get()) }
    }

    /// Whether the VM's vCPUs have protected state (SEV-ES, SEV-SNP): their
    /// IA32_SPEC_CTRL is out of KVM's reach. Stable while KVM holds the VM's
    /// lock, which it does around [`Provider::vm_enable_cap`]; elsewhere it
    /// may become true (KVM then refuses to hand an owned vCPU over): ask
    /// again rather than keep the answer.
    pub fn protected_state(&self) -> bool {
        // SAFETY: `self.0` is a valid bound VM by the type invariant.
        unsafe { bindings::kvm_spec_ctrl_protected_state(self.0.get()) }
    }
}

/// A vCPU of a VM bound to the provider.
///
/// # Invariants
///
/// A `&Vcpu` is only handed out by [`VTable`] trampolines, for a `struct
/// kvm_vcpu` that stays valid for the duration of the hook.
#[repr(transparent)]
pub struct Vcpu(Opaque<bindings::kvm_vcpu>);

impl Vcpu {
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct kvm_vcpu` of a bound VM for the
    /// whole lifetime `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::kvm_vcpu) -> &'a Vcpu {
        // SAFETY: `Vcpu` is a transparent wrapper of `struct kvm_vcpu`,
        // valid for `'a` by the caller's guarantee.
        unsafe { &*ptr.cast() }
    }

    /// A snapshot of the value KVM loads into IA32_SPEC_CTRL at VM entry,
    /// while the vCPU may run on another CPU: for debug views only.
    pub fn peek_hw(&self) -> u64 {
        // SAFETY: `self.0` is a valid vCPU by the type invariant; the helper
        // reads one u64 of it and allows the race with the vCPU's thread.
        unsafe { bindings::kvm_spec_ctrl_peek_hw(self.0.get()) }
    }

    /// A snapshot of the V_SPEC_CTRL host copy the vCPU's next VMRUN loads,
    /// as seen from this CPU: for debug views only. Only if
    /// [`has_host_copy`].
    pub fn peek_host_copy(&self) -> u64 {
        // SAFETY: `self.0` is a valid vCPU by the type invariant; the helper
        // reads the vCPU's provider settings and this CPU's host value.
        unsafe { bindings::kvm_spec_ctrl_peek_host_copy(self.0.get()) }
    }

    /// Whether the vCPU's VM has protected state (see
    /// [`Vm::protected_state`]).
    pub fn vm_protected_state(&self) -> bool {
        // SAFETY: `self.0` is a valid vCPU by the type invariant; the helper
        // reads its VM, valid for at least as long as the vCPU.
        unsafe { bindings::kvm_spec_ctrl_vcpu_protected_state(self.0.get()) }
    }

    /// Have [`Provider::vcpu_enter`] called before the vCPU's next VM entry
    /// and kick it out of guest mode, without waiting. Returns whether the
    /// vCPU's thread is in `KVM_RUN`, i.e. whether that entry can be
    /// expected soon. From any task.
    pub fn request_enter(&self) -> bool {
        // SAFETY: `self.0` is a valid vCPU by the type invariant; making a
        // request and kicking are allowed from any task.
        unsafe { bindings::kvm_spec_ctrl_request_enter(self.0.get()) }
    }
}

/// A vCPU loaded by the current task (`vcpu_load()`), in one of its own
/// hooks: the state KVM keeps for the running guest (VMCS, MSR bitmap, the
/// value loaded into IA32_SPEC_CTRL) may be read and written. Some hooks are
/// preemptible; KVM's preempt notifiers then keep the vCPU's VMCS current on
/// whatever CPU the task runs, and every access goes through a KVM helper.
///
/// # Invariants
///
/// Only [`VTable`] trampolines of hooks that KVM calls with the vCPU loaded
/// by the current task create a `LoadedVcpu`, and it cannot outlive the hook.
pub struct LoadedVcpu<'a> {
    vcpu: &'a Vcpu,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> LoadedVcpu<'a> {
    /// # Safety
    ///
    /// The vCPU must be loaded by the current task for the whole lifetime `'a`.
    unsafe fn new(vcpu: &'a Vcpu) -> Self {
        LoadedVcpu {
            vcpu,
            _not_send: PhantomData,
        }
    }

    fn raw(&self) -> *mut bindings::kvm_vcpu {
        self.vcpu.0.get()
    }

    /// Take (or hand back to KVM) the handling of the guest's IA32_SPEC_CTRL:
    /// while owned, [`Provider::get_msr`]/[`Provider::set_msr`] serve the
    /// accesses KVM sees, and the provider chooses the MSR's interception and
    /// [`LoadedVcpu::set_hw`] value. On release KVM takes the last
    /// [`LoadedVcpu::set_hw`] value as the guest's.
    pub fn own(&self, own: bool) {
        // SAFETY: The vCPU is loaded by this task by the type invariant.
        unsafe { bindings::kvm_spec_ctrl_own(self.raw(), own) }
    }

    /// The value KVM loads into IA32_SPEC_CTRL at VM entry; while the guest
    /// may write the MSR without exits, KVM refreshes it at every VM exit.
    pub fn hw(&self) -> u64 {
        // SAFETY: The vCPU is loaded by this task by the type invariant.
        unsafe { bindings::kvm_spec_ctrl_get_hw(self.raw()) }
    }

    /// Set the value KVM loads into IA32_SPEC_CTRL at the next VM entry.
    pub fn set_hw(&self, value: u64) {
        // SAFETY: The vCPU is loaded by this task by the type invariant.
        unsafe { bindings::kvm_spec_ctrl_set_hw(self.raw(), value) }
    }

    /// Intercept (or pass through) guest RDMSR/WRMSR of IA32_SPEC_CTRL.
    /// Only while owned. KVM keeps the choice and reapplies it when it
    /// recomputes interceptions; an MSR filter that denies the MSR keeps it
    /// intercepted regardless.
    pub fn set_intercept(&self, intercept: bool) {
        // SAFETY: The vCPU is loaded by this task by the type invariant.
        unsafe { bindings::kvm_spec_ctrl_set_intercept(self.raw(), intercept) }
    }

    /// Turn VMX "virtualize IA32_SPEC_CTRL" on or off in the current VMCS.
    /// Only if [`has_virt`].
    pub fn set_virt(&self, enable: bool) {
        // SAFETY: The vCPU is loaded by this task by the type invariant, so
        // its current VMCS is loaded here.
        unsafe { bindings::kvm_spec_ctrl_set_virt(self.raw(), enable) }
    }

    /// Write IA32_SPEC_CTRL_MASK and IA32_SPEC_CTRL_SHADOW of the current
    /// VMCS. Only if [`has_virt`].
    pub fn write_virt(&self, mask: u64, shadow: u64) {
        // SAFETY: As for `set_virt`.
        unsafe { bindings::kvm_spec_ctrl_write_virt(self.raw(), mask, shadow) }
    }

    /// Read IA32_SPEC_CTRL_SHADOW of the current VMCS: what the guest last
    /// wrote. Only if [`has_virt`].
    pub fn read_shadow(&self) -> u64 {
        // SAFETY: As for `set_virt`.
        unsafe { bindings::kvm_spec_ctrl_read_shadow(self.raw()) }
    }

    /// While the guest runs, V_SPEC_CTRL's host copy (the guest runs with it
    /// ORed into its own copy) is the host's own value with the bits of
    /// `mask` taken from `value`, or, without `enable`, the host's own value
    /// as KVM does. Only if [`has_host_copy`].
    pub fn set_host_copy(&self, enable: bool, mask: u64, value: u64) {
        // SAFETY: The vCPU is loaded by this task by the type invariant.
        unsafe { bindings::kvm_spec_ctrl_set_host_copy(self.raw(), enable, mask, value) }
    }

    /// The host copy the vCPU's next VMRUN loads; exact on the VM-entry
    /// path (IRQs off, on the vCPU's CPU). Only if [`has_host_copy`].
    pub fn host_copy(&self) -> u64 {
        self.vcpu.peek_host_copy()
    }

    /// Whether the vCPU runs a nested guest (L2): vmcs02 is current.
    pub fn guest_mode(&self) -> bool {
        // SAFETY: The vCPU is loaded by this task by the type invariant.
        unsafe { bindings::kvm_spec_ctrl_guest_mode(self.raw()) }
    }

    /// Whether the vCPU's VM has protected state (see
    /// [`Vm::protected_state`]).
    pub fn vm_protected_state(&self) -> bool {
        self.vcpu.vm_protected_state()
    }
}

/// A provider of IA32_SPEC_CTRL policy for KVM.
///
/// All functions are associated functions: the provider's state lives in
/// its per-VM and per-vCPU data, and in whatever the module owns.
#[vtable]
pub trait Provider: 'static {
    /// The name of the provider's file in each vCPU's debugfs directory.
    const NAME: &'static CStr;
    /// The KVM_CAP_* number served.
    const CAP: u32;
    /// The /dev/kvm ioctl served.
    const DEV_IOCTL: u32;

    /// Per-VM state.
    type VmData: ForeignOwnable + Send + Sync;
    /// Per-vCPU state.
    type VcpuData: ForeignOwnable + Send + Sync;

    /// `KVM_CHECK_EXTENSION(CAP)`; `vm` is `None` on /dev/kvm.
    fn check_extension(vm: Option<Borrowed<'_, Self::VmData>>) -> i32;

    /// `DEV_IOCTL` on /dev/kvm, `arg` as passed by userspace.
    fn dev_ioctl(arg: usize) -> Result<isize>;

    /// A VM is created while the provider is registered.
    fn vm_init(vm: &Vm) -> Result<Self::VmData>;

    /// `KVM_ENABLE_CAP(CAP)` on the VM fd with these `args`.
    fn vm_enable_cap(vm: &Vm, data: Borrowed<'_, Self::VmData>, args: &[u64; 4]) -> Result;

    /// A vCPU of a bound VM is created (not yet loaded).
    fn vcpu_create(vcpu: &Vcpu, vm: Borrowed<'_, Self::VmData>) -> Result<Self::VcpuData>;

    /// `KVM_ENABLE_CAP(CAP)` on the vCPU fd with these `args`.
    fn vcpu_enable_cap(
        _vcpu: &LoadedVcpu<'_>,
        _data: Borrowed<'_, Self::VcpuData>,
        _args: &[u64; 4],
    ) -> Result {
        Err(EINVAL)
    }

    /// The vCPU was reset (`init_event`: by INIT, else by RESET).
    fn vcpu_reset(_vcpu: &LoadedVcpu<'_>, _data: Borrowed<'_, Self::VcpuData>, _init_event: bool) {}

    /// The vCPU is about to enter the guest, IRQs off. Must not sleep. KVM
    /// calls it before the first entry, and before the first entry after the
    /// events that may change the provider's state (vCPU reset,
    /// `KVM_ENABLE_CAP` on the vCPU, [`Vm::kick_all_vcpus`], a VMCS switch)
    /// or [`Vcpu::request_enter`]; not at other entries.
    fn vcpu_enter(_vcpu: &LoadedVcpu<'_>, _data: Borrowed<'_, Self::VcpuData>) {}

    /// KVM is about to make another VMCS current (nested VM-entry or
    /// VM-exit); the outgoing one is still current. Preemption off; must not
    /// sleep.
    fn vmcs_switch(_vcpu: &LoadedVcpu<'_>, _data: Borrowed<'_, Self::VcpuData>) {}

    /// Guest RDMSR or KVM_GET_MSRS of IA32_SPEC_CTRL, while owned.
    fn get_msr(
        _vcpu: &LoadedVcpu<'_>,
        _data: Borrowed<'_, Self::VcpuData>,
        _host_initiated: bool,
    ) -> Result<u64> {
        Err(EINVAL)
    }

    /// Guest WRMSR (that KVM's checks accepted) or KVM_SET_MSRS of
    /// IA32_SPEC_CTRL, while owned.
    fn set_msr(
        _vcpu: &LoadedVcpu<'_>,
        _data: Borrowed<'_, Self::VcpuData>,
        _value: u64,
        _host_initiated: bool,
    ) -> Result {
        Err(EINVAL)
    }

    /// Fill the vCPU's debugfs file. The vCPU may be running meanwhile.
    fn vcpu_show(_vcpu: &Vcpu, _data: Borrowed<'_, Self::VcpuData>, _m: &SeqFile) {}
}

/// The registration of `T` as KVM's IA32_SPEC_CTRL provider; unregisters
/// on drop.
///
/// # Invariants
///
/// `table` is registered with KVM for as long as the `Registration` exists.
pub struct Registration<T: Provider> {
    table: &'static bindings::kvm_spec_ctrl_provider,
    _t: PhantomData<T>,
}

impl<T: Provider> Registration<T> {
    /// Register `T`; fails with `EBUSY` if another provider is registered.
    ///
    /// # Safety
    ///
    /// The registration must only be dropped when no VM is bound to it, that
    /// is from the owner module's exit path: every bound VM holds a
    /// reference on the module, so none is left once exit runs. Dropping it
    /// earlier would let KVM call another provider with this one's data.
    pub unsafe fn new() -> Result<Self> {
        let table = VTable::<T>::build();
        // SAFETY: The table is `'static`; KVM keeps the pointer until
        // `kvm_spec_ctrl_provider_unregister`, called by `drop` with the same
        // pointer.
        to_result(unsafe { bindings::kvm_spec_ctrl_provider_register(table) })?;
        // INVARIANT: registered just above.
        Ok(Registration {
            table,
            _t: PhantomData,
        })
    }
}

impl<T: Provider> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `self.table` is registered by the type invariant, and no VM
        // is bound by the contract of `new`. KVM waits for the readers of the
        // provider pointer before returning.
        unsafe { bindings::kvm_spec_ctrl_provider_unregister(self.table) }
    }
}

// SAFETY: `Registration` holds no data; unregistering from any thread is fine.
unsafe impl<T: Provider> Send for Registration<T> {}
// SAFETY: `Registration` has no `&self` methods.
unsafe impl<T: Provider> Sync for Registration<T> {}

/// Convert a kernel result into the `int` KVM expects from a hook.
fn to_int(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The `extern "C"` side of [`Provider`].
struct VTable<T: Provider>(PhantomData<T>);

impl<T: Provider> VTable<T> {
    /// # Safety
    ///
    /// `kvm` is NULL, or a valid VM with `vm_priv` NULL (unbound VM) or the
    /// VM's provider data, borrowed for the duration of the call.
    unsafe extern "C" fn check_extension(_kvm: *mut bindings::kvm, vm_priv: *mut c_void) -> c_int {
        let vm = if vm_priv.is_null() {
            None
        } else {
            // SAFETY: A non-NULL `vm_priv` came from `T::VmData::into_foreign`
            // in `vm_init`, and `vm_destroy` has not run: the VM's fd is open.
            Some(unsafe { T::VmData::borrow(vm_priv) })
        };
        T::check_extension(vm)
    }

    /// # Safety
    ///
    /// Called by KVM for `T::DEV_IOCTL` on /dev/kvm with the module pinned.
    unsafe extern "C" fn dev_ioctl(_ioctl: c_uint, arg: c_ulong) -> c_long {
        match T::dev_ioctl(arg) {
            Ok(r) => r as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// `kvm` is a VM being created; `vm_priv` is where KVM stores its data.
    unsafe extern "C" fn vm_init(kvm: *mut bindings::kvm, vm_priv: *mut *mut c_void) -> c_int {
        // SAFETY: KVM passes the VM under creation, valid during the call.
        let vm = unsafe { Vm::from_raw(kvm) };
        match T::vm_init(vm) {
            Ok(data) => {
                // SAFETY: `vm_priv` is valid for writes, per KVM's contract.
                unsafe { *vm_priv = data.into_foreign() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called once per bound VM, after all its vCPUs are destroyed and no
    /// other hook of the VM runs; `vm_priv` is what `vm_init` stored.
    unsafe extern "C" fn vm_destroy(_kvm: *mut bindings::kvm, vm_priv: *mut c_void) {
        // SAFETY: `vm_priv` came from `into_foreign` in `vm_init`, and this
        // is its last use.
        drop(unsafe { T::VmData::from_foreign(vm_priv) });
    }

    /// # Safety
    ///
    /// `kvm` is a bound VM with data `vm_priv`; `cap` is valid for reads.
    unsafe extern "C" fn vm_enable_cap(
        kvm: *mut bindings::kvm,
        vm_priv: *mut c_void,
        cap: *const bindings::kvm_enable_cap,
    ) -> c_int {
        // SAFETY: The VM is valid during the ioctl (its fd is held).
        let vm = unsafe { Vm::from_raw(kvm) };
        // SAFETY: As in `check_extension`.
        let data = unsafe { T::VmData::borrow(vm_priv) };
        // SAFETY: KVM copied `cap` from userspace; valid during the call.
        let args = unsafe { &(*cap).args };
        to_int(T::vm_enable_cap(vm, data, args))
    }

    /// # Safety
    ///
    /// `vcpu` is being created in a bound VM with data `vm_priv`;
    /// `vcpu_priv` is where KVM stores the vCPU's data.
    unsafe extern "C" fn vcpu_create(
        vcpu: *mut bindings::kvm_vcpu,
        vm_priv: *mut c_void,
        vcpu_priv: *mut *mut c_void,
    ) -> c_int {
        // SAFETY: KVM passes the vCPU under creation, valid during the call.
        let v = unsafe { Vcpu::from_raw(vcpu) };
        // SAFETY: As in `check_extension`; the VM outlives its vCPUs.
        let vm = unsafe { T::VmData::borrow(vm_priv) };
        match T::vcpu_create(v, vm) {
            Ok(data) => {
                // SAFETY: `vcpu_priv` is valid for writes, per KVM's contract.
                unsafe { *vcpu_priv = data.into_foreign() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called once per vCPU created by `vcpu_create`, after every other
    /// hook of the vCPU; `vcpu_priv` is what `vcpu_create` stored.
    unsafe extern "C" fn vcpu_destroy(_vcpu: *mut bindings::kvm_vcpu, vcpu_priv: *mut c_void) {
        // SAFETY: `vcpu_priv` came from `into_foreign` in `vcpu_create`, and
        // this is its last use.
        drop(unsafe { T::VcpuData::from_foreign(vcpu_priv) });
    }

    /// Borrow a vCPU and its data in a hook that runs with the vCPU loaded.
    ///
    /// # Safety
    ///
    /// `vcpu` is a vCPU of a bound VM, loaded by this task until `'a` ends;
    /// `vcpu_priv` is its data from `vcpu_create`.
    unsafe fn loaded<'a>(
        vcpu: *mut bindings::kvm_vcpu,
        vcpu_priv: *mut c_void,
    ) -> (LoadedVcpu<'a>, Borrowed<'a, T::VcpuData>) {
        // SAFETY: Valid for `'a` by the caller's guarantee.
        let v = unsafe { Vcpu::from_raw(vcpu) };
        // SAFETY: `vcpu_priv` came from `into_foreign` in `vcpu_create`, and
        // `vcpu_destroy` cannot run while one of the vCPU's hooks runs.
        let data = unsafe { T::VcpuData::borrow(vcpu_priv) };
        // SAFETY: Loaded by this task by the caller's guarantee.
        (unsafe { LoadedVcpu::new(v) }, data)
    }

    /// # Safety
    ///
    /// KVM calls it from the vCPU ioctl, with the vCPU loaded.
    unsafe extern "C" fn vcpu_enable_cap(
        vcpu: *mut bindings::kvm_vcpu,
        vcpu_priv: *mut c_void,
        cap: *const bindings::kvm_enable_cap,
    ) -> c_int {
        // SAFETY: The vCPU is loaded during its ioctls.
        let (v, data) = unsafe { Self::loaded(vcpu, vcpu_priv) };
        // SAFETY: KVM copied `cap` from userspace; valid during the call.
        let args = unsafe { &(*cap).args };
        to_int(T::vcpu_enable_cap(&v, data, args))
    }

    /// # Safety
    ///
    /// KVM resets a vCPU only while it is loaded.
    unsafe extern "C" fn vcpu_reset(
        vcpu: *mut bindings::kvm_vcpu,
        vcpu_priv: *mut c_void,
        init_event: bool,
    ) {
        // SAFETY: Loaded by this task, per the hook's contract.
        let (v, data) = unsafe { Self::loaded(vcpu, vcpu_priv) };
        T::vcpu_reset(&v, data, init_event)
    }

    /// # Safety
    ///
    /// KVM calls it on the VM-entry path, vCPU loaded, IRQs off.
    unsafe extern "C" fn vcpu_enter(vcpu: *mut bindings::kvm_vcpu, vcpu_priv: *mut c_void) {
        // SAFETY: Loaded by this task, per the hook's contract.
        let (v, data) = unsafe { Self::loaded(vcpu, vcpu_priv) };
        T::vcpu_enter(&v, data)
    }

    /// # Safety
    ///
    /// KVM calls it from `vmx_switch_vmcs()`, vCPU loaded, preemption off.
    unsafe extern "C" fn vmcs_switch(vcpu: *mut bindings::kvm_vcpu, vcpu_priv: *mut c_void) {
        // SAFETY: Loaded by this task, per the hook's contract.
        let (v, data) = unsafe { Self::loaded(vcpu, vcpu_priv) };
        T::vmcs_switch(&v, data)
    }

    /// # Safety
    ///
    /// KVM calls it from its MSR emulation, vCPU loaded; `data` is valid for
    /// writes.
    unsafe extern "C" fn get_msr(
        vcpu: *mut bindings::kvm_vcpu,
        vcpu_priv: *mut c_void,
        data: *mut u64,
        host_initiated: bool,
    ) -> c_int {
        // SAFETY: Loaded by this task, per the hook's contract.
        let (v, d) = unsafe { Self::loaded(vcpu, vcpu_priv) };
        match T::get_msr(&v, d, host_initiated) {
            Ok(value) => {
                // SAFETY: `data` is valid for writes, per the hook's contract.
                unsafe { *data = value };
                0
            }
            // KVM_MSR_RET_*: non-zero fails the access (#GP for the guest).
            Err(_) => 1,
        }
    }

    /// # Safety
    ///
    /// KVM calls it from its MSR emulation, vCPU loaded.
    unsafe extern "C" fn set_msr(
        vcpu: *mut bindings::kvm_vcpu,
        vcpu_priv: *mut c_void,
        value: u64,
        host_initiated: bool,
    ) -> c_int {
        // SAFETY: Loaded by this task, per the hook's contract.
        let (v, d) = unsafe { Self::loaded(vcpu, vcpu_priv) };
        match T::set_msr(&v, d, value, host_initiated) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    }

    /// # Safety
    ///
    /// `vcpu_priv` is the data of a vCPU of a bound VM, whose debugfs file is
    /// being read (KVM removes the file before destroying vCPUs); `m` is the
    /// seq_file of this read, used by this thread only.
    unsafe extern "C" fn vcpu_show(
        vcpu: *mut bindings::kvm_vcpu,
        vcpu_priv: *mut c_void,
        m: *mut bindings::seq_file,
    ) {
        // SAFETY: The vCPU outlives its debugfs file, see the contract.
        let v = unsafe { Vcpu::from_raw(vcpu) };
        // SAFETY: See the function's safety contract.
        let data = unsafe { T::VcpuData::borrow(vcpu_priv) };
        // SAFETY: `m` is valid and private to this call.
        let m = unsafe { SeqFile::from_raw(m) };
        T::vcpu_show(v, data, m)
    }

    const VTABLE: bindings::kvm_spec_ctrl_provider = bindings::kvm_spec_ctrl_provider {
        owner: this_module::<T::OwnerModule>().as_ptr(),
        name: as_char_ptr_in_const_context(T::NAME),
        cap: T::CAP,
        dev_ioctl_nr: T::DEV_IOCTL,
        check_extension: Some(Self::check_extension),
        dev_ioctl: Some(Self::dev_ioctl),
        vm_init: Some(Self::vm_init),
        vm_destroy: Some(Self::vm_destroy),
        vm_enable_cap: Some(Self::vm_enable_cap),
        vcpu_create: Some(Self::vcpu_create),
        vcpu_destroy: Some(Self::vcpu_destroy),
        vcpu_enable_cap: if T::HAS_VCPU_ENABLE_CAP {
            Some(Self::vcpu_enable_cap)
        } else {
            None
        },
        vcpu_reset: if T::HAS_VCPU_RESET {
            Some(Self::vcpu_reset)
        } else {
            None
        },
        vcpu_enter: if T::HAS_VCPU_ENTER {
            Some(Self::vcpu_enter)
        } else {
            None
        },
        get_msr: if T::HAS_GET_MSR {
            Some(Self::get_msr)
        } else {
            None
        },
        set_msr: if T::HAS_SET_MSR {
            Some(Self::set_msr)
        } else {
            None
        },
        vcpu_show: if T::HAS_VCPU_SHOW {
            Some(Self::vcpu_show)
        } else {
            None
        },
        vmcs_switch: if T::HAS_VMCS_SWITCH {
            Some(Self::vmcs_switch)
        } else {
            None
        },
    };

    const fn build() -> &'static bindings::kvm_spec_ctrl_provider {
        &Self::VTABLE
    }
}
