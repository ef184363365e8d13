// SPDX-License-Identifier: GPL-2.0-only
/*
 * Contract item 4 under load: vCPUs spin on WRMSR/RDMSR of IA32_SPEC_CTRL
 * while the host flips the VM-wide configuration. After each
 * KVM_ENABLE_CAP returns, every vCPU's next VM entry must carry the new
 * configuration: the first entry the debug view counts after the return
 * has the new generation, mask and value, and loads the merge of the
 * guest's view with it. Meanwhile each guest checks that it always reads
 * back what it wrote.
 *
 * Also prints the cost of an update: IPIs ("CAL" in /proc/interrupts) and
 * VM exits per update (KFSC-FIGURE lines, read by make bench).
 *
 * Usage: force_spec_ctrl_stress_test [-v vCPUs] [-n updates] [-d]
 * (-d: report progress after each update)
 */
#include <pthread.h>

#include "force_spec_ctrl.h"

#define MAX_VCPUS	8

static bool stop;

static void guest_code(void)
{
	static const u64 written[] = {
		0, SPEC_CTRL_IBRS, SPEC_CTRL_STIBP | SPEC_CTRL_SSBD,
		SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD,
	};
	u64 i, r;

	for (i = 0; !READ_ONCE(stop); i++) {
		u64 w = written[i % ARRAY_SIZE(written)];

		wrmsr(MSR_IA32_SPEC_CTRL, w);
		r = rdmsr(MSR_IA32_SPEC_CTRL);
		/* Contract item 6: forced bits never leak into the view. */
		__GUEST_ASSERT(r == w, "wrote 0x%lx, read 0x%lx", w, r);
	}
	GUEST_DONE();
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_DONE:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
	default:
		TEST_FAIL("vCPU%u: unexpected ucall %lu", vcpu->id, uc.cmd);
	}
	return NULL;
}

/*
 * Reads of the debug view before a vCPU counts as stuck; each read waits up
 * to 100 ms for the vCPU's next entry.
 */
#define MAX_POLLS	1000

/* Updates whose cost is measured, before the checked ones. */
#define MEASURED	200

/* Function-call IPIs so far, all CPUs (the kick's KVM_REQUEST_WAIT IPIs). */
static __u64 call_ipis(void)
{
	char line[4096], *p, *end;
	__u64 sum = 0;
	FILE *f = fopen("/proc/interrupts", "r");

	TEST_ASSERT(f, "/proc/interrupts: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		p = line + strspn(line, " ");
		if (strncmp(p, "CAL:", 4))
			continue;
		for (p += 4;; p = end) {
			__u64 n = strtoull(p, &end, 10);

			if (end == p)
				break;
			sum += n;
		}
	}
	fclose(f);
	return sum;
}

/*
 * After KVM_ENABLE_CAP returned generation @gen: check what the vCPU
 * enforced at an entry after the return. A read of the view asks the vCPU
 * to record its next entry and waits for it ("fresh"): that entry comes
 * after the read, hence after the return.
 */
static void check_next_entry(struct kvm_vcpu *vcpu, __u64 gen, __u64 mask, __u64 value)
{
	struct fsc_view v;
	int polls = 0;

	do {
		TEST_ASSERT(++polls < MAX_POLLS,
			    "vCPU%u made no VM entry after generation %llu", vcpu->id, gen);
		fsc_read_view(vcpu, &v);
	} while (!v.fresh);

	TEST_ASSERT(v.applied_generation == gen,
		    "vCPU%u: an entry after KVM_ENABLE_CAP returned generation %llu ran generation %llu",
		    vcpu->id, gen, v.applied_generation);
	TEST_ASSERT(v.mask == mask && v.value == value,
		    "vCPU%u, generation %llu: enforced mask 0x%llx value 0x%llx, want 0x%llx 0x%llx",
		    vcpu->id, gen, v.mask, v.value, mask, value);
	if (mask)
		TEST_ASSERT(v.effective == ((v.guest & ~mask) | (value & mask)),
			    "vCPU%u, generation %llu: loaded 0x%llx for guest view 0x%llx",
			    vcpu->id, gen, v.effective, v.guest);
}

int main(int argc, char *argv[])
{
	static const struct {
		__u64 mask, value;
	} configs[] = {
		{ SPEC_CTRL_SSBD, SPEC_CTRL_SSBD },
		{ SPEC_CTRL_IBRS | SPEC_CTRL_SSBD, SPEC_CTRL_IBRS },
		{ SPEC_CTRL_STIBP, 0 },
		{ 0, 0 },
		{ SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD, SPEC_CTRL_STIBP },
	};
	int nr_vcpus = 2, updates = 1000, measured, opt, i, j;
	bool verbose = false;
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	pthread_t threads[MAX_VCPUS];
	__u64 ipis, exits = 0, gen;
	struct fsc_view v;
	struct kvm_vm *vm;
	int polls;

	while ((opt = getopt(argc, argv, "v:n:d")) != -1) {
		switch (opt) {
		case 'd':
			verbose = true;
			break;
		case 'v':
			nr_vcpus = atoi(optarg);
			break;
		case 'n':
			updates = atoi(optarg);
			break;
		default:
			TEST_FAIL("usage: %s [-v vCPUs] [-n updates]", argv[0]);
		}
	}
	TEST_ASSERT(nr_vcpus >= 1 && nr_vcpus <= MAX_VCPUS, "1 to %d vCPUs", MAX_VCPUS);
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	TEST_ASSERT((fsc_supported() & (SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD)) ==
		    (SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD),
		    "IBRS, STIBP and SSBD must be supported");

	vm = vm_create_with_vcpus(nr_vcpus, guest_code, vcpus);
	for (i = 0; i < nr_vcpus; i++)
		pthread_create(&threads[i], NULL, vcpu_thread, vcpus[i]);
	/* Every vCPU in its loop before the first update. */
	for (i = 0; i < nr_vcpus; i++) {
		polls = 0;
		do {
			TEST_ASSERT(++polls < MAX_POLLS, "vCPU%d never entered the guest", i);
			fsc_read_view(vcpus[i], &v);
		} while (!v.entries);
	}

	if (verbose)
		fprintf(stderr, "all vCPUs entered\n");

	/*
	 * The cost of an update, measured without reading the debug view in
	 * between (each read kicks the vCPU to record its next entry), over at
	 * most MEASURED updates.
	 */
	measured = updates < MEASURED ? updates : MEASURED;
	ipis = call_ipis();
	for (i = 0; i < nr_vcpus; i++)
		exits += vcpu_get_stat(vcpus[i], exits);
	for (gen = 1; gen <= (__u64)measured; gen++)
		fsc_vm_set(vm, configs[gen % ARRAY_SIZE(configs)].mask,
			   configs[gen % ARRAY_SIZE(configs)].value);
	ipis = call_ipis() - ipis;
	for (i = 0; i < nr_vcpus; i++)
		exits -= vcpu_get_stat(vcpus[i], exits);
	exits = -exits;

	/* Contract item 4, update by update. */
	for (gen = measured + 1; gen <= (__u64)(measured + updates); gen++) {
		__u64 mask = configs[gen % ARRAY_SIZE(configs)].mask;
		__u64 value = configs[gen % ARRAY_SIZE(configs)].value;

		fsc_vm_set(vm, mask, value);
		for (i = 0; i < nr_vcpus; i++)
			check_next_entry(vcpus[i], gen, mask, value);
		if (gen % 100 == 0 || verbose)
			fprintf(stderr, "update %llu checked\n", gen - measured);
	}

	stop = true;
	sync_global_to_guest(vm, stop);
	for (j = 0; j < nr_vcpus; j++)
		pthread_join(threads[j], NULL);

	printf("KFSC-FIGURE %d updates of the VM-wide configuration, %d vCPUs spinning on "
	       "WRMSR/RDMSR: %.2f IPIs and %.2f VM exits per update; %d more, each vCPU's "
	       "next entry checked\n",
	       measured, nr_vcpus, (double)ipis / measured, (double)exits / measured, updates);
	printf("KFSC-BENCH-KICKS vcpus=%d updates=%d ipis_per_update=%.2f exits_per_update=%.2f\n",
	       nr_vcpus, measured, (double)ipis / measured, (double)exits / measured);
	kvm_vm_free(vm);
	return 0;
}
