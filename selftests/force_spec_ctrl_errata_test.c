// SPDX-License-Identifier: GPL-2.0-only
/*
 * Prove, on the emulated CPU, the emulator fixes every other result depends
 * on (Documentation/platform.rst):
 *
 * 1. A guest WRMSR of IA32_SPEC_CTRL under "virtualize IA32_SPEC_CTRL" writes
 *    the shadow: the guest reads back exactly what it wrote, KVM_GET_MSRS
 *    returns it, and the hardware MSR holds the merge under the mask.
 * 2. VM entry does not apply MOV-to-CR4's LA57 rule: every selftest guest
 *    runs with the paging depth KVM offers, whatever the host's (the harness
 *    runs this test on a 5-level host and on a 4-level one).
 * 3. VM entry accepts KVM's 64-byte aligned posted-interrupt descriptor: the
 *    vCPU runs with APICv on.
 * 5. External interrupts exit a guest that runs with RFLAGS.IF=0 (as every
 *    selftest guest does): a guest spinning across the host's timer ticks
 *    causes host-interrupt exits. Without this, a spinning vCPU keeps its
 *    CPU forever and KVM's kick-and-wait requests never complete.
 */
#include <stdlib.h>

#include "force_spec_ctrl.h"

#define FORCED		SPEC_CTRL_SSBD		/* forced on */
#define GUEST_VALUE	SPEC_CTRL_STIBP		/* what the guest writes */
#define SPIN_LOOPS	10000000ull

static void guest_code(void)
{
	wrmsr(MSR_IA32_SPEC_CTRL, GUEST_VALUE);
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	GUEST_SYNC(0);		/* the entry after the write, for the debug view */
	wrmsr(MSR_IA32_SPEC_CTRL, 0);
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	/* About a second of emulated time: hundreds of host ticks (HZ=250). */
	for (u64 i = 0; i < SPIN_LOOPS; i++)
		asm volatile("" : : : "memory");
	GUEST_SYNC(0);
	GUEST_DONE();
}


int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char backend[64];
	__u64 v;
	FILE *f;
	char apicv = 0;

	ksft_print_header();
	ksft_set_plan(7);

	f = fopen("/sys/module/kvm_intel/parameters/enable_apicv", "r");
	TEST_ASSERT(f && fread(&apicv, 1, 1, f) == 1, "read enable_apicv");
	fclose(f);
	ksft_test_result(apicv == 'Y', "kvm_intel runs with APICv (erratum 3 in play)\n");

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_FORCE_SPEC_CTRL));
	TEST_ASSERT(fsc_supported() & FORCED, "SSBD cannot be forced on this host");

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	fsc_vm_set(vm, FORCED, FORCED);

	v = fsc_sync(vcpu);
	/* Reaching here proves erratum 2 and 3: the VM entries succeeded. */
	ksft_test_result_pass("VM entries with %d-level guest paging and APICv\n",
			      vm->mmu.pgtable_levels);
	ksft_test_result(fsc_backend_is_expected(vcpu, backend, sizeof(backend)),
			 "backend is %s (%s)\n", fsc_expected_backend(), backend);
	ksft_test_result(v == GUEST_VALUE,
			 "guest RDMSR after WRMSR 0x%lx: 0x%llx (erratum 1)\n",
			 (unsigned long)GUEST_VALUE, (unsigned long long)v);

	v = fsc_next_entry_effective(vcpu);
	ksft_test_result(v == (GUEST_VALUE | FORCED),
			 "hardware MSR after the write: 0x%llx (want 0x%lx)\n",
			 (unsigned long long)v, (unsigned long)(GUEST_VALUE | FORCED));

	v = fsc_sync(vcpu);
	ksft_test_result(v == 0 && vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL) == 0,
			 "guest writes 0, reads 0x%llx, KVM_GET_MSRS agrees\n",
			 (unsigned long long)v);

	v = vcpu_get_stat(vcpu, irq_exits);
	fsc_sync(vcpu);
	v = vcpu_get_stat(vcpu, irq_exits) - v;
	ksft_test_result(v > 0,
			 "%llu host-interrupt exits while the guest spins with IF=0 (erratum 5)\n",
			 (unsigned long long)v);

	kvm_vm_free(vm);
	ksft_finished();
}
