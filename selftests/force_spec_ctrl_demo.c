// SPDX-License-Identifier: GPL-2.0-only
/*
 * make demo: what KVM_CAP_FORCE_SPEC_CTRL offers on this host, and forcing
 * at work: a guest tries to turn a forced-on bit off and a forced-off bit
 * on; it reads back what it wrote, while the hardware MSR keeps the forced
 * bits.
 */
#include "force_spec_ctrl.h"

static const struct {
	const char *name;
	__u64 bit;
} spec_ctrl_bits[] = {
	{ "IBRS", 1ull << 0 }, { "STIBP", 1ull << 1 }, { "SSBD", 1ull << 2 },
	{ "IPRED_DIS_U", 1ull << 3 }, { "IPRED_DIS_S", 1ull << 4 },
	{ "RRSBA_DIS_U", 1ull << 5 }, { "RRSBA_DIS_S", 1ull << 6 },
	{ "PSFD", 1ull << 7 }, { "DDPD_U", 1ull << 8 }, { "BHI_DIS_S", 1ull << 10 },
};

static void print_bits(const char *what, __u64 v)
{
	unsigned int i;

	printf("  %-22s 0x%03llx", what, (unsigned long long)v);
	for (i = 0; i < ARRAY_SIZE(spec_ctrl_bits); i++)
		if (v & spec_ctrl_bits[i].bit)
			printf(" %s", spec_ctrl_bits[i].name);
	printf("\n");
}

static void guest_code(__u64 write)
{
	wrmsr(MSR_IA32_SPEC_CTRL, write);
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
	GUEST_SYNC(0);
	GUEST_DONE();
}

int main(void)
{
	__u64 mask, value, write, supported, seen, effective;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char backend[64];
	int cap;

	cap = kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL);
	printf("KVM_CHECK_EXTENSION(KVM_CAP_FORCE_SPEC_CTRL) = %d\n", cap);
	if (!cap) {
		printf("no IA32_SPEC_CTRL on this host: nothing to force\n");
		return 0;
	}
	supported = fsc_supported();
	printf("KVM_GET_SUPPORTED_FORCE_SPEC_CTRL:\n");
	print_bits("can be forced on:", supported);

	/* Force SSBD on and IBRS off; the guest tries the opposite. */
	mask = SPEC_CTRL_SSBD | SPEC_CTRL_IBRS;
	value = SPEC_CTRL_SSBD & supported;
	write = SPEC_CTRL_IBRS | SPEC_CTRL_STIBP;

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vcpu_args_set(vcpu, 1, write);
	fsc_vm_set(vm, mask, value);
	printf("\nVM: KVM_ENABLE_CAP(mask=0x%llx, value=0x%llx)\n",
	       (unsigned long long)mask, (unsigned long long)value);
	print_bits("forced bits (mask):", mask);
	print_bits("forced to (value):", value);
	print_bits("guest writes:", write);

	seen = fsc_sync(vcpu);
	effective = fsc_next_entry_effective(vcpu);

	fsc_debug_backend(vcpu, backend, sizeof(backend));
	print_bits("guest reads back:", seen);
	print_bits("KVM_GET_MSRS:", vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL));
	print_bits("hardware MSR:", effective);
	printf("  backend                %s\n", backend);
	kvm_vm_free(vm);
	return 0;
}
