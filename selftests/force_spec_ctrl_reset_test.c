// SPDX-License-Identifier: GPL-2.0-only
/*
 * RESET and INIT under forcing (contract items 6 and 8): a vCPU created after
 * the configuration starts with guest view 0 and the forced bits in the
 * hardware MSR; an INIT (latched through KVM_SET_VCPU_EVENTS, processed by
 * the next KVM_RUN) returns the guest view to 0 while the forced bits stay.
 */
#include "force_spec_ctrl.h"

#define MASK	(SPEC_CTRL_SSBD | SPEC_CTRL_STIBP)
#define VALUE	SPEC_CTRL_SSBD
#define WRITTEN	(SPEC_CTRL_IBRS | SPEC_CTRL_STIBP)

static void guest_code(void)
{
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	wrmsr(MSR_IA32_SPEC_CTRL, WRITTEN);
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	GUEST_SYNC(0);
	GUEST_DONE();
}

int main(void)
{
	struct kvm_vcpu_events events;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	__u64 v, eff;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	TEST_ASSERT(fsc_supported() & VALUE, "SSBD not supported");

	ksft_print_header();
	ksft_set_plan(4);

	/* RESET: a vCPU created into a VM that already forces. */
	vm = vm_create(1);
	fsc_vm_set(vm, MASK, VALUE);
	vcpu = vm_vcpu_add(vm, 0, guest_code);
	v = fsc_sync(vcpu);
	eff = fsc_debug_u64(vcpu, "effective");
	ksft_test_result(v == 0 && eff == VALUE,
			 "after RESET: guest reads 0x%llx, effective 0x%llx (want 0, 0x%llx)\n",
			 v, eff, (__u64)VALUE);

	v = fsc_sync(vcpu);
	eff = fsc_next_entry_effective(vcpu);
	ksft_test_result(v == WRITTEN && eff == ((WRITTEN & ~MASK) | VALUE),
			 "guest writes 0x%llx: reads 0x%llx, effective 0x%llx\n", (__u64)WRITTEN, v, eff);

	/* INIT: latch it, let KVM_RUN process it. */
	vcpu_events_get(vcpu, &events);
	events.flags = KVM_VCPUEVENT_VALID_SMM;
	events.smi.smm = 0;
	events.smi.pending = 0;
	events.smi.smm_inside_nmi = 0;
	events.smi.latched_init = 1;
	vcpu_events_set(vcpu, &events);
	/* The vCPU resets and enters at the reset vector, which is not mapped. */
	vcpu_run(vcpu);
	ksft_print_msg("exit after INIT: %s\n", exit_reason_str(vcpu->run->exit_reason));

	v = vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL);
	ksft_test_result(v == 0 && fsc_debug_u64(vcpu, "guest") == 0,
			 "after INIT: KVM_GET_MSRS 0x%llx, guest view 0x%llx\n", v,
			 fsc_debug_u64(vcpu, "guest"));
	eff = fsc_debug_u64(vcpu, "effective");
	ksft_test_result(eff == VALUE, "after INIT: effective 0x%llx (want 0x%llx)\n", eff,
			 (__u64)VALUE);

	kvm_vm_free(vm);
	ksft_finished();
}
