// SPDX-License-Identifier: GPL-2.0-only
/*
 * make bench: what the module costs each VM exit. The guest runs CPUID, which
 * always exits, N times and measures the loop with its TSC (Bochs' TSC counts
 * emulated work, so this is a deterministic cost measure, not wall time);
 * every round trip passes the VM-entry hook once. Beside the cycles, what a
 * real CPU would charge more for than Bochs does: the host's RDMSR and
 * WRMSR of IA32_SPEC_CTRL and its VMREAD/VMWRITE of the VMCS mask and
 * shadow fields per exit, counted by the emulator (scripts/bochs/0009).
 * One line:
 *   KFSC-BENCH-EXIT label=<l> mode=<unloaded|idle|forcing|forcing-off>
 *                   guest=<writes|silent> backend=<b> exits=E
 *                   cycles_per_exit=C rdmsr_per_exit=R wrmsr_per_exit=W
 *                   vmcs_per_exit=V
 * Modes: unloaded: the module is not loaded (stock KVM); idle: loaded, the
 * VM bound to it, forcing never enabled; forcing: SSBD forced on;
 * forcing-off: SSBD forced off. Guest: "writes" sets IBRS in its
 * IA32_SPEC_CTRL before the loop (stock KVM then passes the MSR through and
 * saves it at every exit), "silent" never touches it.
 * Usage: force_spec_ctrl_exit_bench LABEL MODE [writes|silent [MAX_RDMSR]]
 * With MAX_RDMSR, also a test: it fails if the host made more RDMSRs of
 * IA32_SPEC_CTRL per exit than that (DOMAIN item 9: none beyond stock KVM's
 * for the same guest).
 */
#include "force_spec_ctrl.h"

#define N 20000

/* Set by the host: the guest writes IA32_SPEC_CTRL before the loop. */
static bool guest_writes;

static void guest_code(void)
{
	u64 t0, t1;
	int i;

	if (guest_writes)
		wrmsr(MSR_IA32_SPEC_CTRL, SPEC_CTRL_IBRS);
	GUEST_SYNC(0);
	t0 = rdtsc();
	for (i = 0; i < N; i++)
		cpuid(0, &(u32){0}, &(u32){0}, &(u32){0}, &(u32){0});
	t1 = rdtsc();
	GUEST_SYNC(t1 - t0);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	const char *mode;
	char backend[64] = "none";
	struct kvm_vm *vm;
	struct fsc_counts c0, c1;
	__u64 exits, cycles;

	TEST_ASSERT(argc >= 3 && argc <= 5,
		    "usage: %s LABEL unloaded|idle|forcing|forcing-off [writes|silent [MAX_RDMSR]]",
		    argv[0]);
	mode = argv[2];
	guest_writes = argc >= 4 && !strcmp(argv[3], "writes");
	TEST_ASSERT(argc == 3 || guest_writes || !strcmp(argv[3], "silent"), "writes or silent");
	fsc_pin_cpu0();

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	sync_global_to_guest(vm, guest_writes);
	fsc_bench_mode(vcpu, mode, backend, sizeof(backend));

	fsc_sync(vcpu);
	exits = vcpu_get_stat(vcpu, exits);
	fsc_host_counts(&c0);
	cycles = fsc_sync(vcpu);
	fsc_host_counts(&c1);
	exits = vcpu_get_stat(vcpu, exits) - exits;
	printf("KFSC-BENCH-EXIT label=%s mode=%s guest=%s backend=%s exits=%llu cycles_per_exit=%llu "
	       "rdmsr_per_exit=%.2f wrmsr_per_exit=%.2f vmcs_per_exit=%.2f\n",
	       argv[1], mode, guest_writes ? "writes" : "silent", backend, exits, cycles / N,
	       (double)(c1.rdmsr - c0.rdmsr) / exits, (double)(c1.wrmsr - c0.wrmsr) / exits,
	       (double)(c1.vmcs - c0.vmcs) / exits);
	if (argc == 5) {
		double max = strtod(argv[4], NULL);
		double rdmsr = (double)(c1.rdmsr - c0.rdmsr) / exits;

		TEST_ASSERT(rdmsr <= max,
			    "%s, %s guest: %.2f RDMSR of IA32_SPEC_CTRL per exit, at most %.2f allowed",
			    backend, guest_writes ? "writing" : "silent", rdmsr, max);
	}
	kvm_vm_free(vm);
	return 0;
}
