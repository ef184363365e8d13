// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live migration (contract item 7): KVM_GET_MSRS of IA32_SPEC_CTRL on the
 * source returns the guest view, never the forced value; the destination
 * restores it with KVM_SET_MSRS, and its userspace re-applies the
 * configuration before or after that restore. Either way the guest reads
 * its own value and the hardware MSR carries the forced bits.
 */
#include "force_spec_ctrl.h"

#define MASK	(SPEC_CTRL_SSBD | SPEC_CTRL_IBRS)
#define VALUE	SPEC_CTRL_SSBD
#define WRITTEN	(SPEC_CTRL_IBRS | SPEC_CTRL_STIBP)

static void source_guest(void)
{
	wrmsr(MSR_IA32_SPEC_CTRL, WRITTEN);
	GUEST_SYNC(0);
	GUEST_DONE();
}

static void destination_guest(void)
{
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	GUEST_SYNC(0);
	GUEST_DONE();
}


static void destination(__u64 saved, bool config_first)
{
	const char *order = config_first ? "configuration, then KVM_SET_MSRS" :
					   "KVM_SET_MSRS, then configuration";
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	__u64 seen, eff;

	vm = vm_create_with_one_vcpu(&vcpu, destination_guest);
	if (config_first)
		fsc_vm_set(vm, MASK, VALUE);
	vcpu_set_msr(vcpu, MSR_IA32_SPEC_CTRL, saved);
	if (!config_first)
		fsc_vm_set(vm, MASK, VALUE);

	seen = fsc_sync(vcpu);
	eff = fsc_next_entry_effective(vcpu);
	ksft_test_result(seen == WRITTEN && vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL) == WRITTEN &&
			 eff == ((WRITTEN & ~MASK) | VALUE),
			 "%s: guest reads 0x%llx, effective 0x%llx\n", order, seen, eff);
	kvm_vm_free(vm);
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	__u64 saved;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	TEST_ASSERT(fsc_supported() & VALUE, "SSBD not supported");

	ksft_print_header();
	ksft_set_plan(3);

	vm = vm_create_with_one_vcpu(&vcpu, source_guest);
	fsc_vm_set(vm, MASK, VALUE);
	fsc_sync(vcpu);
	saved = vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL);
	ksft_test_result(saved == WRITTEN, "source: KVM_GET_MSRS = 0x%llx (guest wrote 0x%llx)\n",
			 saved, (__u64)WRITTEN);
	kvm_vm_free(vm);

	destination(saved, true);
	destination(saved, false);
	ksft_finished();
}
