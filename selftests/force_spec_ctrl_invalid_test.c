// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_ENABLE_CAP(KVM_CAP_FORCE_SPEC_CTRL) argument validation (contract
 * items 3 and 5): every invalid request fails with EINVAL and leaves the
 * previous configuration intact, as the debug view shows. A bit the host's
 * MSR does not accept may not be in the mask at all, not even forced off
 * (SDM vol. 3C 28.3: with "virtualize IA32_SPEC_CTRL" a guest could write
 * it into the shadow without #GP, and KVM_SET_MSRS would refuse its view).
 */
#include "force_spec_ctrl.h"

static void guest_code(void)
{
	GUEST_DONE();
}

struct invalid_case {
	const char *name;
	__u64 mask, value, flags, reserved;
	bool vcpu_only;		/* valid on a VM fd, so only tried on a vCPU */
};

int main(void)
{
	const __u64 keep_mask = SPEC_CTRL_SSBD | SPEC_CTRL_IBRS, keep_value = SPEC_CTRL_SSBD;
	__u64 supported, unsupported;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	unsigned int i;
	int r;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	supported = fsc_supported();
	TEST_ASSERT(supported & SPEC_CTRL_SSBD, "SSBD not supported");
	/* Bit 9 is reserved in IA32_SPEC_CTRL: never supported. */
	unsupported = 1ull << 9;
	TEST_ASSERT(!(supported & unsupported), "bit 9 reported as supported");

	const struct invalid_case cases[] = {
		{ "value outside mask", SPEC_CTRL_IBRS, SPEC_CTRL_SSBD, 0, 0 },
		{ "value without mask", 0, SPEC_CTRL_SSBD, 0, 0 },
		{ "unsupported bit forced on", unsupported, unsupported, 0, 0 },
		{ "unknown high bit forced on", 1ull << 63, 1ull << 63, 0, 0 },
		{ "unsupported bit forced off", unsupported, 0, 0, 0 },
		{ "unsupported bit forced off beside a supported one",
		  unsupported | SPEC_CTRL_SSBD, SPEC_CTRL_SSBD, 0, 0 },
		{ "unknown high bit forced off", 1ull << 63, 0, 0, 0 },
		{ "unknown flag", SPEC_CTRL_SSBD, 0, 1ull << 1, 0 },
		{ "all flags", SPEC_CTRL_SSBD, 0, ~0ull, 0 },
		{ "args[3] set", SPEC_CTRL_SSBD, 0, 0, 1 },
		{ "CLEAR with a mask", SPEC_CTRL_SSBD, 0, KVM_FORCE_SPEC_CTRL_CLEAR, 0 },
		{ "CLEAR with a value", 0, SPEC_CTRL_SSBD, KVM_FORCE_SPEC_CTRL_CLEAR, 0 },
	};

	ksft_print_header();
	ksft_set_plan(2 * ARRAY_SIZE(cases) + 3);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	fsc_vm_set(vm, keep_mask, keep_value);
	vcpu_run(vcpu);		/* the vCPU applies the configuration */

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct invalid_case *c = &cases[i];

		r = fsc_enable(vm->fd, c->mask, c->value, c->flags, c->reserved);
		ksft_test_result(r == -EINVAL &&
				 fsc_debug_u64(vcpu, "vm_mask") == keep_mask &&
				 fsc_debug_u64(vcpu, "vm_value") == keep_value,
				 "VM: %s: %d, configuration kept\n", c->name, r);
		r = fsc_enable(vcpu->fd, c->mask, c->value, c->flags, c->reserved);
		ksft_test_result(r == -EINVAL &&
				 fsc_debug_u64(vcpu, "mask") == keep_mask &&
				 fsc_debug_u64(vcpu, "value") == keep_value,
				 "vCPU: %s: %d, configuration kept\n", c->name, r);
	}

	r = fsc_enable(vm->fd, 0, 0, KVM_FORCE_SPEC_CTRL_CLEAR, 0);
	ksft_test_result(r == -EINVAL && fsc_debug_u64(vcpu, "vm_mask") == keep_mask,
			 "VM: CLEAR is for vCPUs only: %d\n", r);

	{
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_FORCE_SPEC_CTRL,
			.flags = 1,
			.args = { SPEC_CTRL_SSBD, 0 },
		};

		r = ioctl(vm->fd, KVM_ENABLE_CAP, &cap) ? -errno : 0;
		ksft_test_result(r == -EINVAL && fsc_debug_u64(vcpu, "vm_mask") == keep_mask,
				 "VM: kvm_enable_cap.flags set: %d\n", r);
	}

	/* Every supported bit may be forced off. */
	r = fsc_enable(vm->fd, supported, 0, 0, 0);
	ksft_test_result(!r && fsc_debug_u64(vcpu, "vm_mask") == supported &&
			 fsc_debug_u64(vcpu, "vm_value") == 0,
			 "VM: forcing every supported bit (0x%llx) off is valid: %d\n",
			 (unsigned long long)supported, r);

	kvm_vm_free(vm);
	ksft_finished();
}
