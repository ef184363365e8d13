// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-vCPU configurations (contract item 5): KVM_ENABLE_CAP on a vCPU fd
 * replaces the VM-wide configuration for that vCPU; a later VM-wide change
 * leaves such a vCPU alone; KVM_FORCE_SPEC_CTRL_CLEAR returns it to the
 * VM-wide configuration. Checked through the guest's view and the hardware
 * value at VM entry of each vCPU.
 */
#include "force_spec_ctrl.h"

#define WRITTEN	(SPEC_CTRL_IBRS | SPEC_CTRL_STIBP)

static void guest_code(void)
{
	for (;;) {
		wrmsr(MSR_IA32_SPEC_CTRL, WRITTEN);
		GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
		GUEST_SYNC(0);
	}
}

/* Run the vCPU through a write and one more entry; check view and merge. */
static bool check(struct kvm_vcpu *vcpu, __u64 mask, __u64 value, const char *what)
{
	__u64 seen = fsc_sync(vcpu), eff, want = (WRITTEN & ~mask) | (value & mask);

	eff = fsc_next_entry_effective(vcpu);
	if (seen == WRITTEN && eff == want)
		return true;
	ksft_print_msg("%s: vCPU%u reads 0x%llx, effective 0x%llx, want 0x%llx\n",
		       what, vcpu->id, seen, eff, want);
	return false;
}

int main(void)
{
	const __u64 a_mask = SPEC_CTRL_SSBD, a_val = SPEC_CTRL_SSBD;
	const __u64 b_mask = SPEC_CTRL_IBRS | SPEC_CTRL_SSBD, b_val = 0;
	const __u64 c_mask = SPEC_CTRL_STIBP | SPEC_CTRL_SSBD, c_val = SPEC_CTRL_SSBD;
	struct kvm_vcpu *vcpus[2];
	struct kvm_vm *vm;
	int r;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	TEST_ASSERT(fsc_supported() & SPEC_CTRL_SSBD, "SSBD not supported");

	ksft_print_header();
	ksft_set_plan(4);

	vm = vm_create_with_vcpus(2, guest_code, vcpus);
	fsc_vm_set(vm, a_mask, a_val);
	r = fsc_enable(vcpus[1]->fd, b_mask, b_val, 0, 0);
	TEST_ASSERT(!r, "vCPU KVM_ENABLE_CAP: %d", r);
	ksft_test_result(check(vcpus[0], a_mask, a_val, "VM-wide A") &&
			 check(vcpus[1], b_mask, b_val, "vCPU1 own B"),
			 "vCPU0 follows the VM, vCPU1 its own configuration\n");

	fsc_vm_set(vm, c_mask, c_val);
	ksft_test_result(check(vcpus[0], c_mask, c_val, "VM-wide C") &&
			 check(vcpus[1], b_mask, b_val, "vCPU1 keeps B"),
			 "a VM-wide change leaves the vCPU with its own configuration alone\n");

	r = fsc_enable(vcpus[1]->fd, 0, 0, KVM_FORCE_SPEC_CTRL_CLEAR, 0);
	ksft_test_result(!r && check(vcpus[1], c_mask, c_val, "vCPU1 cleared"),
			 "KVM_FORCE_SPEC_CTRL_CLEAR returns vCPU1 to the VM-wide configuration (%d)\n", r);

	r = fsc_enable(vcpus[0]->fd, 0, 0, 0, 0);
	ksft_test_result(!r && check(vcpus[0], 0, 0, "vCPU0 own off") &&
			 check(vcpus[1], c_mask, c_val, "vCPU1 VM-wide"),
			 "a vCPU's own mask 0 turns forcing off for it alone (%d)\n", r);

	kvm_vm_free(vm);
	ksft_finished();
}
