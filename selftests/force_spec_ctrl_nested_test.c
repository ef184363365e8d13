// SPDX-License-Identifier: GPL-2.0-only
/*
 * Forcing holds while the vCPU runs a nested guest (contract item 8, nested
 * part). L1 passes IA32_SPEC_CTRL through to L2 (MSR bitmap of zeroes), so
 * L1 and L2 share one MSR, as they do on hardware. L2 writes values that
 * clear the forced bits; the host checks, entry by entry, that the value
 * loaded into the hardware MSR keeps them (debug view, "guest_mode: 1" for
 * entries into L2), that L2 and L1 read back exactly what was last written,
 * across nested VM-entries and VM-exits, and across configuration changes
 * made while L2 is the current guest: a new mask, and forcing turned off.
 *
 * L1 is not offered "virtualize IA32_SPEC_CTRL" (KVM's nested VMX offers
 * no tertiary controls), nor V_SPEC_CTRL (KVM's nested SVM does not offer
 * it): checked first.
 *
 * On AMD the same steps run under nested SVM: L1's VMCB intercepts only
 * VMRUN and VMMCALL, so L2 accesses the MSR directly; KVM carries the
 * guest's copy between vmcb01 and vmcb02.
 */
#include "force_spec_ctrl.h"
#include "svm_util.h"
#include "vmx.h"

#define IBRS	SPEC_CTRL_IBRS
#define STIBP	SPEC_CTRL_STIBP
#define SSBD	SPEC_CTRL_SSBD

/* Bit 17 of the primary controls: "activate tertiary controls". */
#define ACTIVATE_TERTIARY	BIT_ULL(17)

enum { L1 = 1, L2 = 2 };

/* GUEST_SYNC(level << 32 | what L1 or L2 reads from IA32_SPEC_CTRL). */
#define SYNC_READ(level)	GUEST_SYNC((u64)(level) << 32 | rdmsr(MSR_IA32_SPEC_CTRL))
/* A sync whose only purpose is the VM entry after it. */
#define SYNC_ENTRY(level)	GUEST_SYNC((u64)(level) << 32 | 0xe)

/* Set by the host: the vCPU is AMD's, L1 uses SVM. */
static bool use_svm;

/* L2 hands control back to L1. */
static void l2_exit(void)
{
	if (use_svm)
		vmmcall();
	else
		vmcall();
}

static void l2_guest_code(void)
{
	/* Clear everything, the forced SSBD included. */
	wrmsr(MSR_IA32_SPEC_CTRL, STIBP);
	SYNC_READ(L2);
	SYNC_ENTRY(L2);
	/* The host changed the configuration meanwhile. */
	SYNC_READ(L2);
	wrmsr(MSR_IA32_SPEC_CTRL, STIBP | SSBD);
	SYNC_ENTRY(L2);
	l2_exit();

	SYNC_ENTRY(L2);
	SYNC_ENTRY(L2);
	/* The host turned forcing off meanwhile. */
	SYNC_READ(L2);
	wrmsr(MSR_IA32_SPEC_CTRL, STIBP);
	l2_exit();
}

static void l1_guest_code(struct vmx_pages *vmx)
{
	GUEST_ASSERT(!((rdmsr(MSR_IA32_VMX_TRUE_PROCBASED_CTLS) >> 32) & ACTIVATE_TERTIARY));

	wrmsr(MSR_IA32_SPEC_CTRL, IBRS);
	SYNC_READ(L1);
	SYNC_ENTRY(L1);

	GUEST_ASSERT(prepare_for_vmx_operation(vmx));
	GUEST_ASSERT(load_vmcs(vmx));
	prepare_vmcs(vmx, l2_guest_code);
	/* Pass every MSR through: the bitmap page is zeroed. */
	GUEST_ASSERT(!vmwrite(CPU_BASED_VM_EXEC_CONTROL,
			      vmreadz(CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_USE_MSR_BITMAPS));

	GUEST_ASSERT(!vmlaunch());
	GUEST_ASSERT_EQ(vmreadz(VM_EXIT_REASON), EXIT_REASON_VMCALL);
	SYNC_READ(L1);
	SYNC_ENTRY(L1);

	vmwrite(GUEST_RIP, vmreadz(GUEST_RIP) + vmreadz(VM_EXIT_INSTRUCTION_LEN));
	GUEST_ASSERT(!vmresume());
	GUEST_ASSERT_EQ(vmreadz(VM_EXIT_REASON), EXIT_REASON_VMCALL);
	SYNC_READ(L1);
	SYNC_ENTRY(L1);
	GUEST_DONE();
}

static void l1_svm_guest_code(struct svm_test_data *svm)
{
	struct vmcb *vmcb = svm->vmcb;

	GUEST_ASSERT(!this_cpu_has(X86_FEATURE_V_SPEC_CTRL));

	wrmsr(MSR_IA32_SPEC_CTRL, IBRS);
	SYNC_READ(L1);
	SYNC_ENTRY(L1);

	/* Intercepts VMRUN and VMMCALL only: no MSR permission map. */
	generic_svm_setup(svm, l2_guest_code);

	run_guest(vmcb, svm->vmcb_gpa);
	GUEST_ASSERT_EQ(vmcb->control.exit_code, SVM_EXIT_VMMCALL);
	SYNC_READ(L1);
	SYNC_ENTRY(L1);

	vmcb->save.rip += 3;	/* VMMCALL */
	run_guest(vmcb, svm->vmcb_gpa);
	GUEST_ASSERT_EQ(vmcb->control.exit_code, SVM_EXIT_VMMCALL);
	SYNC_READ(L1);
	SYNC_ENTRY(L1);
	GUEST_DONE();
}

static void l1_guest(void *arg)
{
	if (use_svm)
		l1_svm_guest_code(arg);
	else
		l1_guest_code(arg);
}

enum step_kind { READ, ENTRY };

/* One GUEST_SYNC of the guest code above, in order, and what it must show. */
struct step {
	enum step_kind kind;
	int level;
	/*
	 * READ: the value L1/L2 read. ENTRY: the value loaded into the MSR at
	 * the last VM entry before this sync, i.e. after the guest's last write.
	 */
	__u64 want;
	/* Before running to this sync: set this VM-wide configuration. */
	bool configure;
	__u64 mask, value;
	const char *what;
	/*
	 * ENTRY in L2 right after L1 resumed it: the entry recorded is the
	 * first after the previous sync, L1's. On VMX the switch to vmcs02
	 * runs the entry hook again, so the record is L2's; SVM has no switch
	 * (KVM carries the guest's copy into vmcb02), so it stays L1's.
	 */
	bool after_resume;
};

static const struct step steps[] = {
	{ READ, L1, IBRS, true, SSBD, SSBD, "L1 reads what it wrote" },
	{ ENTRY, L1, IBRS | SSBD, false, 0, 0, "L1 runs with SSBD forced" },
	{ READ, L2, STIBP, false, 0, 0, "L2 reads what it wrote" },
	{ ENTRY, L2, STIBP | SSBD, false, 0, 0, "L2 cleared SSBD, which stays forced" },
	{ READ, L2, STIBP, true, IBRS | SSBD, IBRS, "new mask while L2 runs: L2's view kept" },
	{ ENTRY, L2, STIBP | IBRS, false, 0, 0, "L2 set SSBD, forced off now; IBRS forced on" },
	{ READ, L1, STIBP | SSBD, false, 0, 0, "L1 reads L2's last write after the VM-exit" },
	{ ENTRY, L1, STIBP | IBRS, false, 0, 0, "L1 runs under the new mask" },
	{ ENTRY, L2, STIBP | IBRS, false, 0, 0, "back in L2, under the new mask",
	  .after_resume = true },
	{ ENTRY, L2, STIBP | IBRS, false, 0, 0, "an entry into L2 itself, under the new mask" },
	{ READ, L2, STIBP | SSBD, true, 0, 0, "forcing off while L2 runs: L2's view kept" },
	{ READ, L1, STIBP, false, 0, 0, "L1 reads L2's write: no stale control in vmcs01" },
	{ ENTRY, L1, STIBP, false, 0, 0, "L1 runs with its own value" },
};

static bool run_step(struct kvm_vcpu *vcpu, const struct step *s)
{
	struct fsc_view view;
	__u64 got, level, read;
	bool want_l2;

	if (s->configure)
		fsc_vm_set(vcpu->vm, s->mask, s->value);
	got = s->kind == ENTRY ? fsc_sync_recorded(vcpu) : fsc_sync(vcpu);
	level = got >> 32;
	read = (__u32)got;
	if (level != (__u64)s->level) {
		ksft_print_msg("sync from L%llu, want L%d\n", level, s->level);
		return false;
	}
	if (s->kind == READ) {
		if (read == s->want)
			return true;
		ksft_print_msg("L%d read 0x%llx, want 0x%llx\n", s->level, read, s->want);
		return false;
	}
	fsc_read_view(vcpu, &view);
	want_l2 = s->level == L2 && !(s->after_resume && use_svm);
	/* While not forcing the vCPU is KVM's, and no entry is recorded. */
	if (view.effective == s->want && (!view.mask || view.guest_mode == want_l2))
		return true;
	ksft_print_msg("L%d: loaded 0x%llx at an entry with guest_mode %llu, want 0x%llx\n",
		       s->level, view.effective, view.guest_mode, s->want);
	return false;
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char backend[64];
	gva_t nested_gva;
	struct ucall uc;
	unsigned int i;

	use_svm = kvm_cpu_has(X86_FEATURE_SVM);
	TEST_REQUIRE(use_svm || kvm_cpu_has(X86_FEATURE_VMX));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	TEST_ASSERT((fsc_supported() & (IBRS | SSBD)) == (IBRS | SSBD),
		    "IBRS and SSBD must be supported");

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(steps) + 1);

	vm = vm_create_with_one_vcpu(&vcpu, l1_guest);
	if (use_svm)
		vcpu_alloc_svm(vm, &nested_gva);
	else
		vcpu_alloc_vmx(vm, &nested_gva);
	vcpu_args_set(vcpu, 1, nested_gva);
	sync_global_to_guest(vm, use_svm);
	ksft_test_result(fsc_backend_is_expected(vcpu, backend, sizeof(backend)),
			 "backend %s\n", backend);

	/*
	 * On SVM the step after L1 resumes L2 sees L1's entry again (no VMCS
	 * switch reruns the entry hook): it says so, and the next step checks
	 * an entry into L2 itself on both.
	 */
	for (i = 0; i < ARRAY_SIZE(steps); i++)
		ksft_test_result(run_step(vcpu, &steps[i]), "%s%s\n", steps[i].what,
				 steps[i].after_resume && use_svm ?
				 " (VMX only; on SVM: L1's entry, as the previous step)" : "");

	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_DONE);
	kvm_vm_free(vm);
	ksft_finished();
}
