// SPDX-License-Identifier: GPL-2.0-only
/*
 * make bench: what the module costs a nested VM exit. L2 runs CPUID, which
 * always exits and which L0 reflects to L1; L1 skips the instruction and
 * resumes L2. Each round trip is two VMCS switches in L0 (vmcs02 to vmcs01
 * at the reflected exit, back at L1's VMRESUME) plus L1's own exits
 * (VMREAD/VMWRITE/VMRESUME). L2 measures the loop with its TSC (Bochs'
 * TSC counts emulated work). One line:
 *   KFSC-BENCH-NESTED label=<l> mode=<unloaded|idle|forcing> backend=<b>
 *                     l0_exits=E cycles_per_l2_exit=C rdmsr_per_l2_exit=R
 *                     wrmsr_per_l2_exit=W vmcs_per_l2_exit=V
 * (the host's IA32_SPEC_CTRL accesses, counted by the emulator: see
 * force_spec_ctrl_exit_bench.c)
 * Usage: force_spec_ctrl_nested_bench LABEL MODE
 */
#include "force_spec_ctrl.h"
#include "vmx.h"

#define N 2000

static void l2_guest_code(void)
{
	u64 t0, t1;
	int i;

	t0 = rdtsc();
	for (i = 0; i < N; i++)
		cpuid(0, &(u32){0}, &(u32){0}, &(u32){0}, &(u32){0});
	t1 = rdtsc();
	GUEST_SYNC(t1 - t0);
	vmcall();
}

static void l1_guest_code(struct vmx_pages *vmx)
{
	u64 reason;

	GUEST_ASSERT(prepare_for_vmx_operation(vmx));
	GUEST_ASSERT(load_vmcs(vmx));
	prepare_vmcs(vmx, l2_guest_code);
	/* Pass every MSR through: the bitmap page is zeroed. */
	GUEST_ASSERT(!vmwrite(CPU_BASED_VM_EXEC_CONTROL,
			      vmreadz(CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_USE_MSR_BITMAPS));
	GUEST_SYNC(0);
	GUEST_ASSERT(!vmlaunch());
	for (;;) {
		reason = vmreadz(VM_EXIT_REASON);
		if (reason == EXIT_REASON_VMCALL)
			break;
		GUEST_ASSERT_EQ(reason, EXIT_REASON_CPUID);
		vmwrite(GUEST_RIP, vmreadz(GUEST_RIP) + vmreadz(VM_EXIT_INSTRUCTION_LEN));
		GUEST_ASSERT(!vmresume());
	}
	GUEST_DONE();
}

int main(int argc, char *argv[])
{
	char backend[64] = "none";
	struct kvm_vcpu *vcpu;
	__u64 exits, cycles;
	const char *mode;
	struct kvm_vm *vm;
	gva_t vmx_gva;
	struct ucall uc;
	struct fsc_counts c0, c1;

	TEST_ASSERT(argc == 3, "usage: %s LABEL unloaded|idle|forcing", argv[0]);
	mode = argv[2];
	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_VMX));
	fsc_pin_cpu0();

	vm = vm_create_with_one_vcpu(&vcpu, l1_guest_code);
	vcpu_alloc_vmx(vm, &vmx_gva);
	vcpu_args_set(vcpu, 1, vmx_gva);
	fsc_bench_mode(vcpu, mode, backend, sizeof(backend));

	fsc_sync(vcpu);		/* L1 ready to launch L2 */
	exits = vcpu_get_stat(vcpu, exits);
	fsc_host_counts(&c0);
	cycles = fsc_sync(vcpu);
	fsc_host_counts(&c1);
	exits = vcpu_get_stat(vcpu, exits) - exits;
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_DONE);
	printf("KFSC-BENCH-NESTED label=%s mode=%s backend=%s l0_exits=%llu cycles_per_l2_exit=%llu "
	       "rdmsr_per_l2_exit=%.2f wrmsr_per_l2_exit=%.2f vmcs_per_l2_exit=%.2f\n",
	       argv[1], mode, backend, exits, cycles / N, (double)(c1.rdmsr - c0.rdmsr) / N,
	       (double)(c1.wrmsr - c0.wrmsr) / N, (double)(c1.vmcs - c0.vmcs) / N);
	kvm_vm_free(vm);
	return 0;
}
