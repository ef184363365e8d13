// SPDX-License-Identifier: GPL-2.0-only
/*
 * A randomized driver of the KVM_CAP_FORCE_SPEC_CTRL ABI, seeded and
 * reproducible: random sequences over two VMs with two vCPUs each of
 * VM-fd and vCPU-fd KVM_ENABLE_CAP (valid and invalid arguments, CLEAR),
 * KVM_SET_MSRS/KVM_GET_MSRS of IA32_SPEC_CTRL, guest WRMSR/RDMSR (valid and
 * reserved values), INIT of a vCPU, and RESET (the VM made anew). A model of
 * the contract predicts every result; after every step, for every vCPU:
 *
 * - item 3: an invalid call is refused with EINVAL and changes nothing (the
 *   debug view's VM-wide and per-vCPU configuration equal the model's);
 * - items 6, 7: KVM_GET_MSRS returns the model's guest view, and a guest
 *   RDMSR returns it too;
 * - item 8: after the vCPU ran, the value loaded into IA32_SPEC_CTRL (the
 *   debug view's hw_now, saved at the exit) is the merge of the guest view
 *   with the configuration in force for the vCPU.
 *
 * Usage: force_spec_ctrl_random_test [-s SEED] [-n STEPS]
 * The seed is printed first, and with any failure.
 */
#include <time.h>

#include "force_spec_ctrl.h"

#define NR_VMS		2
#define NR_VCPUS	2

enum guest_op { OP_RDMSR, OP_WRMSR };

/* Per vCPU, written by the host before each run. */
static u64 cmd_op[NR_VCPUS], cmd_val[NR_VCPUS];

static void guest_code(u64 idx)
{
	for (;;) {
		u64 op = READ_ONCE(cmd_op[idx]), v = READ_ONCE(cmd_val[idx]), r = 0;
		u8 vec;

		if (op == OP_WRMSR)
			vec = wrmsr_safe(MSR_IA32_SPEC_CTRL, v);
		else
			vec = rdmsr_safe(MSR_IA32_SPEC_CTRL, &r);
		GUEST_SYNC_ARGS(op, vec, r, 0, 0);
	}
}

struct mvcpu {
	bool own;		/* a per-vCPU configuration */
	__u64 omask, ovalue;
	__u64 view;		/* the guest view */
};

struct mvm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu[NR_VCPUS];
	__u64 mask, value;
	struct mvcpu v[NR_VCPUS];
};

static struct mvm vms[NR_VMS];
static __u64 supported, rng, seed;
static unsigned long step;

#define CHECK(cond, fmt, ...)							\
	TEST_ASSERT(cond, "seed 0x%llx, step %lu: " fmt, seed, step, ##__VA_ARGS__)

static __u64 next(void)
{
	/* xorshift64*: reproducible from the seed alone. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}

static bool chance(unsigned int percent)
{
	return next() % 100 < percent;
}

/* A random IA32_SPEC_CTRL-ish value: mostly supported bits, some not. */
static __u64 rand_bits(void)
{
	__u64 v = next() & supported;

	if (chance(10))
		v |= 1ULL << (next() % 64);
	return v;
}

static void make_vm(struct mvm *m)
{
	int i;

	m->vm = vm_create_with_vcpus(NR_VCPUS, guest_code, m->vcpu);
	for (i = 0; i < NR_VCPUS; i++) {
		vcpu_args_set(m->vcpu[i], 1, (u64)i);
		m->v[i] = (struct mvcpu){};
	}
	m->mask = m->value = 0;
}

static void effective(struct mvm *m, int i, __u64 *mask, __u64 *value)
{
	*mask = m->v[i].own ? m->v[i].omask : m->mask;
	*value = m->v[i].own ? m->v[i].ovalue : m->value;
}

static __u64 merged(struct mvm *m, int i)
{
	__u64 mask, value;

	effective(m, i, &mask, &value);
	return (m->v[i].view & ~mask) | (value & mask);
}

/* Contract item 3 for VM-wide and per-vCPU requests. */
static int predict(bool vcpu_scope, __u64 mask, __u64 value, __u64 flags, __u64 reserved)
{
	if (reserved || (flags & ~KVM_FORCE_SPEC_CTRL_VALID_FLAGS))
		return -EINVAL;
	if (flags & KVM_FORCE_SPEC_CTRL_CLEAR)
		return vcpu_scope && !(mask | value) ? 0 : -EINVAL;
	if ((value & ~mask) || (mask & ~supported))
		return -EINVAL;
	return 0;
}

static void random_args(__u64 *mask, __u64 *value, __u64 *flags, __u64 *reserved)
{
	*mask = rand_bits();
	*value = next() & *mask;
	if (chance(10))
		*value |= rand_bits();	/* may fall outside the mask */
	*flags = chance(15) ? KVM_FORCE_SPEC_CTRL_CLEAR : 0;
	if (*flags && chance(70))
		*mask = *value = 0;
	if (chance(5))
		*flags |= 1ULL << (next() % 64);
	*reserved = chance(5) ? next() : 0;
	if (chance(10))
		*mask = *value = 0;	/* forcing off */
}

static void step_vm_cap(struct mvm *m)
{
	__u64 mask, value, flags, reserved;
	int want, r;

	random_args(&mask, &value, &flags, &reserved);
	want = predict(false, mask, value, flags, reserved);
	r = fsc_enable(m->vm->fd, mask, value, flags, reserved);
	CHECK(r == want, "VM KVM_ENABLE_CAP(0x%llx, 0x%llx, 0x%llx, 0x%llx) = %d, want %d",
	      mask, value, flags, reserved, r, want);
	if (!r) {
		m->mask = mask;
		m->value = value;
	}
}

static void step_vcpu_cap(struct mvm *m, int i)
{
	__u64 mask, value, flags, reserved;
	int want, r;

	random_args(&mask, &value, &flags, &reserved);
	want = predict(true, mask, value, flags, reserved);
	r = fsc_enable(m->vcpu[i]->fd, mask, value, flags, reserved);
	CHECK(r == want, "vCPU%d KVM_ENABLE_CAP(0x%llx, 0x%llx, 0x%llx, 0x%llx) = %d, want %d",
	      i, mask, value, flags, reserved, r, want);
	if (r)
		return;
	m->v[i].own = !(flags & KVM_FORCE_SPEC_CTRL_CLEAR);
	m->v[i].omask = mask;
	m->v[i].ovalue = value;
}

static void step_set_msrs(struct mvm *m, int i)
{
	__u64 v = rand_bits();
	int r = _vcpu_set_msr(m->vcpu[i], MSR_IA32_SPEC_CTRL, v);
	int want = !(v & ~supported);

	CHECK(r == want, "vCPU%d KVM_SET_MSRS(0x%llx) set %d MSRs, want %d", i, v, r, want);
	if (r == 1)
		m->v[i].view = v;
}

/*
 * Run vCPU @i for one guest access; the ucall's args are [1] the op,
 * [2] the exception vector (0: none), [3] what RDMSR read.
 */
static void run_guest(struct mvm *m, int i, enum guest_op op, __u64 val, struct ucall *uc)
{
	cmd_op[i] = op;
	cmd_val[i] = val;
	sync_global_to_guest(m->vm, cmd_op);
	sync_global_to_guest(m->vm, cmd_val);
	vcpu_run(m->vcpu[i]);
	CHECK(m->vcpu[i]->run->exit_reason == KVM_EXIT_IO, "vCPU%d exit %s", i,
	      exit_reason_str(m->vcpu[i]->run->exit_reason));
	switch (get_ucall(m->vcpu[i], uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(*uc);
	default:
		CHECK(0, "vCPU%d: unexpected ucall %lu", i, uc->cmd);
	}
}

/* Item 8: what the vCPU ran with, saved by KVM at the exit. */
static void check_loaded(struct mvm *m, int i)
{
	__u64 hw = fsc_debug_u64(m->vcpu[i], "hw_now");

	CHECK(hw == merged(m, i), "vCPU%d loaded 0x%llx, want 0x%llx (view 0x%llx)", i, hw,
	      merged(m, i), m->v[i].view);
}

static void step_guest_wrmsr(struct mvm *m, int i)
{
	__u64 v = rand_bits();
	struct ucall uc;

	run_guest(m, i, OP_WRMSR, v, &uc);
	if (v & ~supported) {
		CHECK(uc.args[2] == GP_VECTOR, "vCPU%d WRMSR(0x%llx): vector %lu, want #GP", i, v,
		      uc.args[2]);
	} else {
		CHECK(uc.args[2] == 0, "vCPU%d WRMSR(0x%llx): vector %lu", i, v, uc.args[2]);
		m->v[i].view = v;
	}
	check_loaded(m, i);
}

static void step_guest_rdmsr(struct mvm *m, int i)
{
	struct ucall uc;

	run_guest(m, i, OP_RDMSR, 0, &uc);
	CHECK(uc.args[1] == OP_RDMSR && uc.args[2] == 0 && uc.args[3] == m->v[i].view,
	      "vCPU%d RDMSR: vector %lu, 0x%lx, want 0x%llx", i, uc.args[2], uc.args[3],
	      m->v[i].view);
	check_loaded(m, i);
}

/*
 * INIT of the BSP (an AP would wait for a SIPI): the guest view is 0
 * afterwards; then the saved state comes back.
 */
static void step_init(struct mvm *m, int i)
{
	struct kvm_x86_state *state = vcpu_save_state(m->vcpu[i]);
	struct kvm_vcpu_events events;

	vcpu_events_get(m->vcpu[i], &events);
	events.flags = KVM_VCPUEVENT_VALID_SMM;
	events.smi.smm = 0;
	events.smi.pending = 0;
	events.smi.smm_inside_nmi = 0;
	events.smi.latched_init = 1;
	vcpu_events_set(m->vcpu[i], &events);
	/* Resets, then runs at the reset vector, which is not mapped. */
	vcpu_run(m->vcpu[i]);
	CHECK(vcpu_get_msr(m->vcpu[i], MSR_IA32_SPEC_CTRL) == 0, "vCPU%d: view not 0 after INIT", i);
	m->v[i].view = 0;
	check_loaded(m, i);
	vcpu_load_state(m->vcpu[i], state);
	kvm_x86_state_cleanup(state);
	/* The saved state carries the view from before the INIT. */
	m->v[i].view = vcpu_get_msr(m->vcpu[i], MSR_IA32_SPEC_CTRL);
}

/* Items 3, 6, 7 for every vCPU of every VM. */
static void check_all(void)
{
	char own[64], want_own[64];
	int k, i;

	for (k = 0; k < NR_VMS; k++) {
		struct mvm *m = &vms[k];

		for (i = 0; i < NR_VCPUS; i++) {
			struct kvm_vcpu *vcpu = m->vcpu[i];
			__u64 v = vcpu_get_msr(vcpu, MSR_IA32_SPEC_CTRL);
			unsigned long long vm_mask, vm_value;
			char path[128], line[128];
			FILE *f;

			CHECK(v == m->v[i].view, "VM%d vCPU%d KVM_GET_MSRS 0x%llx, want 0x%llx", k,
			      i, v, m->v[i].view);
			if (m->v[i].own)
				snprintf(want_own, sizeof(want_own), "0x%llx 0x%llx", m->v[i].omask,
					 m->v[i].ovalue);
			else
				snprintf(want_own, sizeof(want_own), "none");
			/* One read of the view: the VM-wide and the vCPU's configuration. */
			fsc_debug_path(vcpu, path, sizeof(path));
			f = fopen(path, "r");
			CHECK(f, "open %s", path);
			own[0] = 0;
			vm_mask = vm_value = ~0ULL;
			while (fgets(line, sizeof(line), f)) {
				sscanf(line, "vm_mask: %llx", &vm_mask);
				sscanf(line, "vm_value: %llx", &vm_value);
				sscanf(line, "vcpu_override: %63[^\n]", own);
			}
			fclose(f);
			CHECK(vm_mask == m->mask && vm_value == m->value,
			      "VM%d: VM-wide configuration 0x%llx:0x%llx, want 0x%llx:0x%llx", k,
			      vm_mask, vm_value, m->mask, m->value);
			CHECK(!strcmp(own, want_own), "VM%d vCPU%d override '%s', want '%s'", k, i,
			      own, want_own);
		}
	}
}

int main(int argc, char *argv[])
{
	unsigned long steps = 10000;
	unsigned long counts[8] = {};
	int opt, k;

	seed = 0;
	while ((opt = getopt(argc, argv, "s:n:")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			steps = strtoul(optarg, NULL, 0);
			break;
		default:
			TEST_FAIL("usage: %s [-s seed] [-n steps]", argv[0]);
		}
	}
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	TEST_REQUIRE(fsc_kvm_has_spec_ctrl());
	if (!seed)
		seed = ((__u64)getpid() << 32) ^ (__u64)time(NULL);
	rng = seed | 1;
	supported = fsc_supported();
	printf("force_spec_ctrl_random_test: seed 0x%llx, %lu steps, supported 0x%llx\n", seed,
	       steps, supported);

	for (k = 0; k < NR_VMS; k++)
		make_vm(&vms[k]);
	check_all();

	for (step = 1; step <= steps; step++) {
		struct mvm *m = &vms[next() % NR_VMS];
		int i = next() % NR_VCPUS;
		unsigned int what = next() % 100;

		if (what < 15) {
			step_vm_cap(m);
			counts[0]++;
		} else if (what < 35) {
			step_vcpu_cap(m, i);
			counts[1]++;
		} else if (what < 45) {
			step_set_msrs(m, i);
			counts[2]++;
		} else if (what < 70) {
			step_guest_wrmsr(m, i);
			counts[3]++;
		} else if (what < 97) {
			step_guest_rdmsr(m, i);
			counts[4]++;
		} else if (what < 99) {
			step_init(m, 0);
			counts[5]++;
		} else {
			kvm_vm_free(m->vm);
			make_vm(m);
			counts[6]++;
		}
		check_all();
		if (step % 1000 == 0)
			fprintf(stderr, "step %lu checked\n", step);
	}
	printf("KFSC-FIGURE random ABI driver, seed 0x%llx: %lu steps (VM caps %lu, vCPU caps %lu, "
	       "KVM_SET_MSRS %lu, guest WRMSR %lu, guest RDMSR %lu, INIT %lu, RESET %lu), every "
	       "step checked\n", seed, steps, counts[0], counts[1], counts[2], counts[3],
	       counts[4], counts[5], counts[6]);
	for (k = 0; k < NR_VMS; k++)
		kvm_vm_free(vms[k].vm);
	return 0;
}
