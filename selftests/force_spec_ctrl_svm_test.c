// SPDX-License-Identifier: GPL-2.0-only
/*
 * Prove, on the emulated AMD CPU, what every AMD result depends on
 * (Documentation/platform.rst), with stock KVM (no forcing module loaded):
 *
 * - IA32_SPEC_CTRL as AMD documents it (scripts/bochs/0006): CPUID
 *   Fn8000_0008 EBX enumerates IBRS, STIBP and SSBD, the MSR takes exactly
 *   those bits.
 * - V_SPEC_CTRL (0006; CPUID Fn8000_000A EDX[20]): VMRUN loads the guest's
 *   copy from the VMCB (SPEC_CTRL, save area offset 0x2E0), guest RDMSR and
 *   WRMSR touch that copy only, #VMEXIT saves it back; the host's copy is
 *   never changed by the guest.
 * - Erratum 7 (0007): external interrupts exit a guest that runs with
 *   RFLAGS.IF=0 under V_INTR_MASKING (every selftest guest does).
 *
 * Runs pinned to CPU 0, so that /dev/cpu/0/msr is the host copy of the
 * CPU the vCPU runs on.
 */
#include <stdlib.h>

#include "force_spec_ctrl.h"

#define GUEST_VALUE	SPEC_CTRL_STIBP		/* what the guest writes */
#define HOST_VALUE	SPEC_CTRL_SSBD		/* what KVM_SET_MSRS writes */
#define SPIN_LOOPS	10000000ull

static void guest_code(void)
{
	wrmsr(MSR_IA32_SPEC_CTRL, GUEST_VALUE);
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	/* The host has written HOST_VALUE with KVM_SET_MSRS in between. */
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	GUEST_SYNC(wrmsr_safe(MSR_IA32_SPEC_CTRL, SPEC_CTRL_SSBD | BIT_ULL(10)));
	wrmsr(MSR_IA32_SPEC_CTRL, 0);
	/* About a second of emulated time: hundreds of host ticks (HZ=250). */
	for (u64 i = 0; i < SPIN_LOOPS; i++)
		asm volatile("" : : : "memory");
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	GUEST_DONE();
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	__u64 v, r, host;

	ksft_print_header();
	ksft_set_plan(8);

	fsc_pin_cpu0();

	ksft_test_result(kvm_cpu_has(X86_FEATURE_AMD_IBRS) && kvm_cpu_has(X86_FEATURE_AMD_STIBP) &&
			 kvm_cpu_has(X86_FEATURE_AMD_SSBD) && this_cpu_has(X86_FEATURE_AMD_IBRS) &&
			 this_cpu_has(X86_FEATURE_AMD_STIBP) && this_cpu_has(X86_FEATURE_AMD_SSBD),
			 "CPUID Fn8000_0008 EBX: IBRS, STIBP, SSBD (host and KVM)\n");
	ksft_test_result(this_cpu_has(X86_FEATURE_V_SPEC_CTRL),
			 "CPUID Fn8000_000A EDX[20]: V_SPEC_CTRL\n");

	host = fsc_host_spec_ctrl();
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);

	v = fsc_sync(vcpu);
	r = vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL);
	ksft_test_result(v == GUEST_VALUE && r == GUEST_VALUE && fsc_host_spec_ctrl() == host,
			 "guest WRMSR 0x%lx reads 0x%llx, KVM_GET_MSRS 0x%llx, host copy 0x%llx (was 0x%llx)\n",
			 (unsigned long)GUEST_VALUE, (unsigned long long)v, (unsigned long long)r,
			 (unsigned long long)fsc_host_spec_ctrl(), (unsigned long long)host);

	vcpu_set_msr(vcpu, MSR_IA32_SPEC_CTRL, HOST_VALUE);
	v = fsc_sync(vcpu);
	ksft_test_result(v == HOST_VALUE, "KVM_SET_MSRS 0x%lx, guest reads 0x%llx\n",
			 (unsigned long)HOST_VALUE, (unsigned long long)v);

	v = fsc_sync(vcpu);
	ksft_test_result(v == GP_VECTOR, "guest WRMSR of an Intel-only bit (BHI_DIS_S): %s\n",
			 v == GP_VECTOR ? "#GP" : "accepted");

	v = vcpu_get_stat(vcpu, irq_exits);
	r = fsc_sync(vcpu);
	v = vcpu_get_stat(vcpu, irq_exits) - v;
	ksft_test_result(r == 0, "guest WRMSR 0 reads 0x%llx\n", (unsigned long long)r);
	ksft_test_result(v > 0,
			 "%llu host-interrupt exits while the guest spins with IF=0\n",
			 (unsigned long long)v);
	ksft_test_result(fsc_host_spec_ctrl() == host, "host copy still 0x%llx\n",
			 (unsigned long long)host);

	kvm_vm_free(vm);
	ksft_finished();
}
