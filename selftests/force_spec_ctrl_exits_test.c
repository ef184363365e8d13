// SPDX-License-Identifier: GPL-2.0-only
/*
 * VM exits per guest access of IA32_SPEC_CTRL with forcing on (contract item
 * 9): 10^4 guest WRMSR and 10^4 RDMSR, with SSBD forced on, then with SSBD
 * forced off. The exits during the loop come from KVM's binary stats.
 * vmx-virt, and svm-vspec forcing on: only the test's own ucall (an I/O
 * exit) and host interrupts (irq_exits: the emulated host's timer) may
 * appear. The intercept backends, and svm-vspec forcing a bit off: exactly
 * one exit per access on top of those.
 */
#include "force_spec_ctrl.h"

#define N 10000

static void guest_code(void)
{
	int i;

	for (;;) {
		GUEST_SYNC(0);
		for (i = 0; i < N; i++) {
			wrmsr(MSR_IA32_SPEC_CTRL, (i & 1) ? SPEC_CTRL_IBRS : SPEC_CTRL_STIBP);
			GUEST_ASSERT_EQ(rdmsr(MSR_IA32_SPEC_CTRL),
					(i & 1) ? SPEC_CTRL_IBRS : SPEC_CTRL_STIBP);
		}
	}
}

/* One loop of accesses under @mask/@value: are its exits the backend's? */
static void measure(struct kvm_vcpu *vcpu, const char *backend, __u64 mask, __u64 value)
{
	__u64 exits, io, irq, other, want_other;

	fsc_vm_set(vcpu->vm, mask, value);
	fsc_sync(vcpu);

	exits = vcpu_get_stat(vcpu, exits);
	io = vcpu_get_stat(vcpu, io_exits);
	irq = vcpu_get_stat(vcpu, irq_exits);
	fsc_sync(vcpu);
	exits = vcpu_get_stat(vcpu, exits) - exits;
	io = vcpu_get_stat(vcpu, io_exits) - io;
	irq = vcpu_get_stat(vcpu, irq_exits) - irq;
	other = exits - io - irq;

	want_other = fsc_backend_exits(backend, mask, value) ? 2 * N : 0;
	printf("KFSC-FIGURE exits for %d guest WRMSR + %d RDMSR of IA32_SPEC_CTRL (%s, SSBD forced %s): "
	       "%llu total, %llu ucall I/O, %llu host interrupts, %llu other\n",
	       N, N, backend, value ? "on" : "off", exits, io, irq, other);
	ksft_test_result(other == want_other && io == 1,
			 "SSBD forced %s: %llu exits besides the ucall and host interrupts (want %llu), %llu I/O\n",
			 value ? "on" : "off", other, want_other, io);
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char backend[64];

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));

	ksft_print_header();
	ksft_set_plan(3);
	TEST_REQUIRE(fsc_supported() & SPEC_CTRL_SSBD);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	fsc_vm_set(vm, SPEC_CTRL_SSBD, SPEC_CTRL_SSBD);
	ksft_test_result(fsc_backend_is_expected(vcpu, backend, sizeof(backend)),
			 "backend %s (want %s)\n", backend, fsc_expected_backend());
	measure(vcpu, backend, SPEC_CTRL_SSBD, SPEC_CTRL_SSBD);
	measure(vcpu, backend, SPEC_CTRL_SSBD, 0);
	kvm_vm_free(vm);
	ksft_finished();
}
