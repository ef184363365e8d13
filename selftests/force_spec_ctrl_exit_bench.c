// SPDX-License-Identifier: GPL-2.0-only
/*
 * make bench: what the module costs each VM exit. The guest runs CPUID, which
 * always exits, N times and measures the loop with its TSC (Bochs' TSC counts
 * emulated work, so this is a deterministic cost measure, not wall time);
 * every round trip passes the VM-entry hook once. One line:
 *   KFSC-BENCH-EXIT label=<l> mode=<unloaded|idle|forcing|forcing-off> backend=<b>
 *                   exits=E cycles_per_exit=C
 * Modes: unloaded: the module is not loaded (stock KVM); idle: loaded, the
 * VM bound to it, forcing never enabled; forcing: SSBD forced on;
 * forcing-off: SSBD forced off.
 * Usage: force_spec_ctrl_exit_bench LABEL MODE
 */
#include "force_spec_ctrl.h"

#define N 20000

static void guest_code(void)
{
	u64 t0, t1;
	int i;

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
	__u64 exits, cycles;

	TEST_ASSERT(argc == 3, "usage: %s LABEL unloaded|idle|forcing", argv[0]);
	mode = argv[2];

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	fsc_bench_mode(vcpu, mode, backend, sizeof(backend));

	fsc_sync(vcpu);
	exits = vcpu_get_stat(vcpu, exits);
	cycles = fsc_sync(vcpu);
	exits = vcpu_get_stat(vcpu, exits) - exits;
	printf("KFSC-BENCH-EXIT label=%s mode=%s backend=%s exits=%llu cycles_per_exit=%llu\n",
	       argv[1], mode, backend, exits, cycles / N);
	kvm_vm_free(vm);
	return 0;
}
