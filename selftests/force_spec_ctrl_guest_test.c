// SPDX-License-Identifier: GPL-2.0-only
/*
 * The guest's view under forcing (contract items 6 and 8), on the backend
 * the harness names (FSC_BACKEND):
 * for a table of configurations, the guest writes values that set and clear
 * forced bits; it reads back exactly what it wrote, KVM_GET_MSRS agrees, and
 * the hardware MSR at the next VM entry is (written & ~mask) | (value & mask).
 * Writes of bits the host does not have still raise #GP (bit 9, reserved
 * everywhere, and a defined bit this host lacks, if any), and leave the
 * non-zero view of the last write. What KVM_GET_MSRS returns, KVM_SET_MSRS
 * takes back (a migration destination restores it). Also the VM-wide
 * configuration changing between guest writes, and turning forcing off.
 */
#include "force_spec_ctrl.h"

/*
 * Values the guest writes: none, single bits, combinations, and (set by the
 * host, from what this host's MSR takes) every supported bit and the
 * supported ones among bits 3-8 (Intel's: none on AMD).
 */
#define WRITE_ALL	6
#define WRITE_HIGH	7
static __u64 writes[] = {
	0, SPEC_CTRL_IBRS, SPEC_CTRL_STIBP, SPEC_CTRL_SSBD,
	SPEC_CTRL_IBRS | SPEC_CTRL_SSBD, SPEC_CTRL_STIBP | SPEC_CTRL_SSBD,
	[WRITE_ALL] = 0, [WRITE_HIGH] = 0, 0,
	/* Last, non-zero: the view a faulting write must leave alone. */
	SPEC_CTRL_SSBD,
};

/*
 * Values that must raise #GP: bit 9 (reserved in IA32_SPEC_CTRL), and a bit
 * the architecture defines but this host's MSR does not accept (set by the
 * host; bit 9 again where the host accepts every defined bit).
 */
static __u64 faulting[] = { 1ull << 9, 1ull << 9 };

static void guest_code(void)
{
	unsigned int i;
	u8 vector;

	for (;;) {
		for (i = 0; i < ARRAY_SIZE(writes); i++) {
			wrmsr(MSR_IA32_SPEC_CTRL, writes[i]);
			GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
			GUEST_SYNC(0);	/* next entry: the debug view records it */
		}
		/* #GP, and the view is unchanged. */
		for (i = 0; i < ARRAY_SIZE(faulting); i++) {
			vector = wrmsr_safe(MSR_IA32_SPEC_CTRL, faulting[i]);
			GUEST_SYNC(vector);
			GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
		}
	}
}


static int run_round(struct kvm_vcpu *vcpu, __u64 mask, __u64 value)
{
	unsigned int i;
	int bad = 0;
	__u64 v, eff, want;

	for (i = 0; i < ARRAY_SIZE(writes); i++) {
		v = fsc_sync(vcpu);
		if (v != writes[i]) {
			ksft_print_msg("mask 0x%llx: guest wrote 0x%llx, read 0x%llx\n",
				       mask, writes[i], v);
			bad++;
		}
		if (vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL) != writes[i]) {
			ksft_print_msg("mask 0x%llx: KVM_GET_MSRS after write 0x%llx: 0x%lx\n",
				       mask, writes[i], (unsigned long)vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL));
			bad++;
		}
		eff = fsc_next_entry_effective(vcpu);
		want = (writes[i] & ~mask) | (value & mask);
		if (eff != want || fsc_debug_u64(vcpu, "guest") != writes[i]) {
			ksft_print_msg("mask 0x%llx value 0x%llx: write 0x%llx: effective 0x%llx, want 0x%llx\n",
				       mask, value, writes[i], eff, want);
			bad++;
		}
	}
	for (i = 0; i < ARRAY_SIZE(faulting); i++) {
		v = fsc_sync(vcpu);
		if (v != GP_VECTOR) {
			ksft_print_msg("mask 0x%llx: write 0x%llx: vector %llu, want #GP\n",
				       mask, faulting[i], v);
			bad++;
		}
		v = fsc_sync(vcpu);
		if (v != writes[ARRAY_SIZE(writes) - 1]) {
			ksft_print_msg("mask 0x%llx: view after #GP: 0x%llx, want 0x%llx\n",
				       mask, v, writes[ARRAY_SIZE(writes) - 1]);
			bad++;
		}
	}
	/* A migration destination restores what the source saved. */
	v = vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL);
	if (_vcpu_set_msr(vcpu, MSR_IA32_SPEC_CTRL, v) != 1) {
		ksft_print_msg("mask 0x%llx: KVM_SET_MSRS refuses KVM_GET_MSRS's 0x%llx\n",
			       mask, v);
		bad++;
	}
	return bad;
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	__u64 sup;
	unsigned int i;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	sup = fsc_supported();

	const struct {
		const char *name;
		__u64 mask, value;
	} configs[] = {
		{ "SSBD forced on", SPEC_CTRL_SSBD, SPEC_CTRL_SSBD },
		{ "IBRS forced off", SPEC_CTRL_IBRS, 0 },
		{ "IBRS off, SSBD and STIBP on", SPEC_CTRL_IBRS | SPEC_CTRL_SSBD | SPEC_CTRL_STIBP,
		  SPEC_CTRL_SSBD | SPEC_CTRL_STIBP },
		{ "every supported bit on", sup, sup },
		{ "every supported bit off", sup, 0 },
		{ "forcing off (mask 0): stock KVM", 0, 0 },
		{ "forcing on again", SPEC_CTRL_STIBP, SPEC_CTRL_STIBP },
	};

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(configs) + 1);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	writes[WRITE_ALL] = sup;
	writes[WRITE_HIGH] = sup & 0x1f8;
	sync_global_to_guest(vm, writes);
	/* The lowest defined bit this host's MSR does not take. */
	for (i = 0; i < 11; i++) {
		if (i != 9 && !(sup & BIT_ULL(i))) {
			faulting[1] = BIT_ULL(i);
			break;
		}
	}
	ksft_print_msg("faulting writes: 0x%llx, 0x%llx\n", faulting[0], faulting[1]);
	sync_global_to_guest(vm, faulting);
	for (i = 0; i < ARRAY_SIZE(configs); i++) {
		fsc_vm_set(vm, configs[i].mask, configs[i].value);
		ksft_test_result(!run_round(vcpu, configs[i].mask, configs[i].value),
				 "%s (mask 0x%llx value 0x%llx)\n", configs[i].name,
				 configs[i].mask, configs[i].value);
	}
	{
		char backend[64];

		ksft_test_result(fsc_backend_is_expected(vcpu, backend, sizeof(backend)),
				 "backend %s (want %s)\n", backend, fsc_expected_backend());
	}
	kvm_vm_free(vm);
	ksft_finished();
}
