// SPDX-License-Identifier: GPL-2.0-only
/*
 * Contract item 6 for a guest whose CPUID has no IA32_SPEC_CTRL (neither
 * Intel's bit nor the AMD ones KVM also reports): while the host forces bits,
 * the guest's RDMSR and WRMSR of the MSR take #GP, as on stock KVM, and the
 * hardware MSR still carries the forced bits.
 */
#include "force_spec_ctrl.h"

#define FORCED	SPEC_CTRL_SSBD

/* CPUID 0x80000008.EBX: the AMD bits that also enumerate IA32_SPEC_CTRL. */
#define AMD_IBRS	KVM_X86_CPU_FEATURE(0x80000008, 0, EBX, 14)
#define AMD_STIBP	KVM_X86_CPU_FEATURE(0x80000008, 0, EBX, 15)
#define AMD_SSBD	KVM_X86_CPU_FEATURE(0x80000008, 0, EBX, 24)

static void guest_code(void)
{
	u64 v;

	GUEST_SYNC(rdmsr_safe(MSR_IA32_SPEC_CTRL, &v));
	GUEST_SYNC(wrmsr_safe(MSR_IA32_SPEC_CTRL, SPEC_CTRL_STIBP));
	GUEST_SYNC(0);		/* the entry after the attempts, for the debug view */
	GUEST_DONE();
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char backend[64];
	__u64 vec;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	TEST_ASSERT(fsc_supported() & FORCED, "SSBD cannot be forced on this host");

	ksft_print_header();
	ksft_set_plan(4);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vcpu_clear_cpuid_feature(vcpu, X86_FEATURE_SPEC_CTRL);
	vcpu_clear_cpuid_feature(vcpu, AMD_IBRS);
	vcpu_clear_cpuid_feature(vcpu, AMD_STIBP);
	vcpu_clear_cpuid_feature(vcpu, AMD_SSBD);
	fsc_vm_set(vm, FORCED, FORCED);

	vec = fsc_sync(vcpu);
	ksft_test_result(vec == GP_VECTOR, "guest RDMSR takes #GP (vector %llu)\n", vec);
	vec = fsc_sync(vcpu);
	ksft_test_result(vec == GP_VECTOR, "guest WRMSR takes #GP (vector %llu)\n", vec);
	vec = fsc_next_entry_effective(vcpu);
	ksft_test_result(vec == FORCED, "hardware MSR 0x%llx carries the forced bit\n", vec);
	ksft_test_result(fsc_backend_is_expected(vcpu, backend, sizeof(backend)),
			 "backend %s\n", backend);

	kvm_vm_free(vm);
	ksft_finished();
}
