// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM's MSR filter is honoured while the module owns IA32_SPEC_CTRL.
 *
 * A VMM that installs KVM_X86_SET_MSR_FILTER denying MSR 0x48 (with
 * KVM_CAP_X86_USER_SPACE_MSR) after the guest started must see each guest
 * RDMSR/WRMSR of it as a KVM_EXIT_X86_RDMSR/WRMSR, exactly as without the
 * module, and the forced bits must stay in force meanwhile (the write went
 * to userspace, not to the hardware). Removing the filter passes the MSR
 * through again, with no exit to userspace.
 *
 * Runs the same guest with forcing off (KVM's own handling of the MSR, the
 * reference) and, if the module is loaded, with SSBD forced on.
 */
#include "force_spec_ctrl.h"

#define FORCED		SPEC_CTRL_SSBD
#define BEFORE		SPEC_CTRL_IBRS		/* the guest's write before the filter */
#define FROM_VMM	SPEC_CTRL_STIBP		/* what userspace answers to the RDMSR */
#define DENIED_WRITE	(SPEC_CTRL_IBRS | SPEC_CTRL_STIBP)

static u8 deny_bits;	/* one MSR, its bit clear: denied */

static struct kvm_msr_filter filter_deny = {
	.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
	.ranges = {
		{
			.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			.nmsrs = 1,
			.base = MSR_IA32_SPEC_CTRL,
			.bitmap = &deny_bits,
		},
	},
};

static struct kvm_msr_filter filter_none = {
	.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
};

static void guest_code(void)
{
	u64 v;

	/* Before the filter: no exit to userspace. */
	wrmsr(MSR_IA32_SPEC_CTRL, BEFORE);
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));

	/* The VMM installed the filter: both accesses exit to it. */
	v = rdmsr(MSR_IA32_SPEC_CTRL);
	wrmsr(MSR_IA32_SPEC_CTRL, DENIED_WRITE);
	GUEST_SYNC(v);

	/* The VMM removed it: the guest's own last write is back. */
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	GUEST_DONE();
}

struct counts {
	unsigned int rdmsr, wrmsr;
};

/*
 * Run to the next ucall, answering userspace MSR exits on the way: RDMSR of
 * 0x48 with FROM_VMM, WRMSR of 0x48 accepted (and checked). Returns the
 * GUEST_SYNC value.
 */
static __u64 run(struct kvm_vcpu *vcpu, struct counts *c)
{
	struct kvm_run *r = vcpu->run;

	for (;;) {
		vcpu_run(vcpu);
		switch (r->exit_reason) {
		case KVM_EXIT_X86_RDMSR:
			TEST_ASSERT(r->msr.index == MSR_IA32_SPEC_CTRL &&
				    r->msr.reason == KVM_MSR_EXIT_REASON_FILTER,
				    "RDMSR exit for 0x%x, reason %u", r->msr.index, r->msr.reason);
			r->msr.data = FROM_VMM;
			r->msr.error = 0;
			c->rdmsr++;
			continue;
		case KVM_EXIT_X86_WRMSR:
			TEST_ASSERT(r->msr.index == MSR_IA32_SPEC_CTRL &&
				    r->msr.reason == KVM_MSR_EXIT_REASON_FILTER &&
				    r->msr.data == DENIED_WRITE,
				    "WRMSR exit for 0x%x, data 0x%llx, reason %u", r->msr.index,
				    (unsigned long long)r->msr.data, r->msr.reason);
			r->msr.error = 0;
			c->wrmsr++;
			continue;
		default:
			return fsc_ucall_sync(vcpu);
		}
	}
}

static void scenario(bool loaded, bool forcing)
{
	const char *what = forcing ? "forcing SSBD" : "not forcing";
	__u64 forced = forcing ? FORCED : 0;
	struct counts c = {};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	__u64 v, hw;

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_enable_cap(vm, KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER);
	if (forcing)
		fsc_vm_set(vm, FORCED, FORCED);

	v = run(vcpu, &c);
	ksft_test_result(v == BEFORE && !c.rdmsr && !c.wrmsr,
			 "%s, no filter: guest reads 0x%llx, %u+%u userspace exits\n",
			 what, v, c.rdmsr, c.wrmsr);

	vm_ioctl(vm, KVM_X86_SET_MSR_FILTER, &filter_deny);
	v = run(vcpu, &c);
	ksft_test_result(v == FROM_VMM && c.rdmsr == 1 && c.wrmsr == 1,
			 "%s, 0x48 denied: guest RDMSR got the VMM's 0x%llx; %u RDMSR, %u WRMSR exits (want 1, 1)\n",
			 what, v, c.rdmsr, c.wrmsr);
	/* Without the module, KVM's value of the MSR is the hardware's. */
	hw = loaded ? fsc_debug_u64(vcpu, "hw_now") : vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL);
	ksft_test_result(hw == (BEFORE | forced),
			 "%s, 0x48 denied: hardware value 0x%llx, want 0x%llx (the denied write did not reach it)\n",
			 what, hw, BEFORE | forced);

	vm_ioctl(vm, KVM_X86_SET_MSR_FILTER, &filter_none);
	c = (struct counts){};
	v = run(vcpu, &c);
	ksft_test_result(v == BEFORE && !c.rdmsr && !c.wrmsr,
			 "%s, filter removed: guest reads 0x%llx, %u+%u userspace exits\n",
			 what, v, c.rdmsr, c.wrmsr);
	kvm_vm_free(vm);
}

int main(void)
{
	bool loaded = kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL);

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_X86_USER_SPACE_MSR));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_X86_MSR_FILTER));
	TEST_REQUIRE(fsc_kvm_has_spec_ctrl());
	if (loaded)
		TEST_ASSERT(fsc_supported() & FORCED, "SSBD not supported");

	ksft_print_header();
	ksft_set_plan(loaded ? 8 : 4);
	scenario(loaded, false);
	if (loaded)
		scenario(loaded, true);
	ksft_finished();
}
