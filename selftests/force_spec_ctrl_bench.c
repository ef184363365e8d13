// SPDX-License-Identifier: GPL-2.0-only
/*
 * make bench: the cost of guest WRMSR of IA32_SPEC_CTRL, measured by the
 * guest itself in TSC cycles (Bochs' TSC counts emulated work, so the figure
 * is a deterministic cost measure, not wall time), and the VM exits counted
 * by KVM's binary stats. One line per configuration (nothing forced, SSBD
 * forced on, SSBD forced off):
 *   KFSC-BENCH label=<label> backend=<b> forcing=<none|ssbd-on|ssbd-off>
 *              writes=N exits=E cycles_per_wrmsr=C
 * Usage: force_spec_ctrl_bench LABEL
 */
#include "force_spec_ctrl.h"

#define N 10000

static void guest_code(void)
{
	u64 t0, t1;
	int i;

	for (;;) {
		/* Warm up: the first non-zero write makes stock KVM pass the MSR through. */
		wrmsr(MSR_IA32_SPEC_CTRL, SPEC_CTRL_STIBP);
		GUEST_SYNC(0);
		t0 = rdtsc();
		for (i = 0; i < N; i++)
			wrmsr(MSR_IA32_SPEC_CTRL, (i & 1) ? SPEC_CTRL_IBRS : SPEC_CTRL_STIBP);
		t1 = rdtsc();
		GUEST_SYNC(t1 - t0);
	}
}

static void measure(struct kvm_vcpu *vcpu, const char *label, const char *forcing,
		    __u64 mask, __u64 value)
{
	__u64 exits, irq, io, cycles;
	char backend[64];

	fsc_vm_set(vcpu->vm, mask, value);
	fsc_sync(vcpu);
	exits = vcpu_get_stat(vcpu, exits);
	irq = vcpu_get_stat(vcpu, irq_exits);
	io = vcpu_get_stat(vcpu, io_exits);
	cycles = fsc_sync(vcpu);
	exits = vcpu_get_stat(vcpu, exits) - exits - (vcpu_get_stat(vcpu, irq_exits) - irq) -
		(vcpu_get_stat(vcpu, io_exits) - io);
	fsc_debug_backend(vcpu, backend, sizeof(backend));
	printf("KFSC-BENCH label=%s backend=%s forcing=%s writes=%d exits=%llu cycles_per_wrmsr=%llu\n",
	       label, backend, forcing, N, exits, cycles / N);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	TEST_ASSERT(argc == 2, "usage: %s LABEL", argv[0]);
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	TEST_REQUIRE(fsc_supported() & SPEC_CTRL_SSBD);
	measure(vcpu, argv[1], "none", 0, 0);
	measure(vcpu, argv[1], "ssbd-on", SPEC_CTRL_SSBD, SPEC_CTRL_SSBD);
	measure(vcpu, argv[1], "ssbd-off", SPEC_CTRL_SSBD, 0);
	kvm_vm_free(vm);
	return 0;
}
