// SPDX-License-Identifier: GPL-2.0-only
/*
 * AMD V_SPEC_CTRL (contract item 8): the guest runs with the OR of its own
 * copy of IA32_SPEC_CTRL and the host copy, and stock KVM leaves the host's
 * own value (x86_spec_ctrl_current) in the host copy, so the bits the host
 * chose for itself (SSBD with spec_store_bypass_disable=on, STIBP with
 * spectre_v2_user=on on SMT hosts) stay in force for guests. Forcing must
 * keep them outside its mask: the host copy is
 * (host & ~mask) | (value & mask), so the value in force is
 * (guest & ~mask) | (value & mask) | (host & ~mask).
 *
 * What is checked where: the value in force is the debug view's record of
 * the entry (KVM's guest copy ORed with the host copy KVM computed for that
 * VMRUN), not a read of the hardware, which the guest cannot see past its
 * own copy; the hardware check is on the way back: after every exit the
 * host runs with its own value again (a host copy left in place after
 * #VMEXIT would show there).
 *
 * Needs a host booted with spec_store_bypass_disable=on (and, where it
 * applies, spectre_v2_user=on): fails if the host's own value is 0, since
 * the test could not fail then. Runs pinned to CPU 0, so that
 * /dev/cpu/0/msr is the host value of the CPU the vCPU runs on.
 */

#include "force_spec_ctrl.h"

static __u64 guest_writes[] = { 0, SPEC_CTRL_IBRS, SPEC_CTRL_SSBD, SPEC_CTRL_STIBP };

static void guest_code(void)
{
	unsigned int i;

	for (;;) {
		for (i = 0; i < ARRAY_SIZE(guest_writes); i++) {
			wrmsr(MSR_IA32_SPEC_CTRL, guest_writes[i]);
			GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
			GUEST_SYNC(0);	/* next entry: the debug view records it */
		}
	}
}

/* Whether the host, back from the guest, runs with its own value again. */
static bool host_restored(const char *what, __u64 baseline)
{
	__u64 host = fsc_host_spec_ctrl();

	if (host == baseline)
		return true;
	ksft_print_msg("%s: after an exit the host runs with 0x%llx, not its own 0x%llx\n",
		       what, (unsigned long long)host, (unsigned long long)baseline);
	return false;
}

int main(void)
{
	const struct {
		const char *name;
		__u64 mask, value;
	} configs[] = {
		{ "IBRS forced on", SPEC_CTRL_IBRS, SPEC_CTRL_IBRS },
		{ "SSBD forced off", SPEC_CTRL_SSBD, 0 },
		{ "STIBP forced on, SSBD off", SPEC_CTRL_STIBP | SPEC_CTRL_SSBD, SPEC_CTRL_STIBP },
		{ "SSBD forced on", SPEC_CTRL_SSBD, SPEC_CTRL_SSBD },
	};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	__u64 baseline, read, eff, want, guest;
	unsigned int i, j;
	char backend[64];
	int bad;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	ksft_print_header();
	ksft_set_plan(2 + ARRAY_SIZE(configs));

	fsc_pin_cpu0();

	baseline = fsc_host_spec_ctrl();
	ksft_test_result(baseline & (SPEC_CTRL_SSBD | SPEC_CTRL_STIBP),
			 "the host runs with its own SSBD/STIBP: IA32_SPEC_CTRL 0x%llx\n",
			 (unsigned long long)baseline);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	for (i = 0; i < ARRAY_SIZE(configs); i++) {
		__u64 mask = configs[i].mask, value = configs[i].value;

		fsc_vm_set(vm, mask, value);
		bad = 0;
		for (j = 0; j < ARRAY_SIZE(guest_writes); j++) {
			guest = guest_writes[j];
			read = fsc_sync(vcpu);
			/* Back from the guest: the host's own value again. */
			bad += !host_restored(configs[i].name, baseline);
			eff = fsc_next_entry_effective(vcpu);
			bad += !host_restored(configs[i].name, baseline);
			want = (guest & ~mask) | (value & mask) | (baseline & ~mask);
			if (read != guest || eff != want) {
				ksft_print_msg("%s: guest wrote 0x%llx, read 0x%llx; host 0x%llx; in force 0x%llx, want 0x%llx\n",
					       configs[i].name, (unsigned long long)guest,
					       (unsigned long long)read, (unsigned long long)baseline,
					       (unsigned long long)eff, (unsigned long long)want);
				bad++;
			}
		}
		ksft_test_result(!bad, "%s (mask 0x%llx value 0x%llx): the host's own bits outside the mask stay in force\n",
				 configs[i].name, (unsigned long long)mask, (unsigned long long)value);
	}
	ksft_test_result(fsc_backend_is_expected(vcpu, backend, sizeof(backend)),
			 "backend %s (want %s)\n", backend, fsc_expected_backend());
	kvm_vm_free(vm);
	ksft_finished();
}
