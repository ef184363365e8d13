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
 * VM exits per update (KFSC-FIGURE lines, read by make bench), and, on
 * vmx-virt, fails when the updates did not kick the running vCPUs: the
 * checks above read the debug view, and every read kicks, so they alone
 * could not see an update that leaves a vCPU in the guest under the old
 * configuration. On vmx-virt the vCPUs' MSR accesses do not exit, so they
 * are in guest mode nearly all the time, and an update must send at least
 * half an IPI per spinning vCPU on average (KVM_REQUEST_WAIT sends one per
 * vCPU in guest mode; measured 2.00 and, on the debug kernel, 1.94 for 2
 * vCPUs). The intercepting backends exit at every access, so a vCPU is
 * often outside guest mode when an update comes, needs no IPI, and the
 * count says nothing there (0.83 per update seen with vmx-intercept on the
 * debug kernel): printed only.
 *
 * With -u 2 or more, that many host threads update the VM-wide
 * configuration at once, each checking every vCPU after each of its
 * updates. Which of two racing updates is the newer is then the kernel's
 * choice, so each check is of what holds whatever the order: the entry
 * after an update returned runs a generation newer than every update that
 * had returned before that update began; it enforces a configuration some
 * thread issued (each thread has its own, so a mask of one update with the
 * value of another shows) and loads the merge with it. After the threads
 * finish, every generation seen must name one configuration, the VM's
 * generation must count every update, and a last update is checked exactly.
 *
 * Usage: force_spec_ctrl_stress_test [-v vCPUs] [-n updates] [-u updaters] [-d]
 * (-n: per updater with -u; -d: report progress after each update)
 */
#include <pthread.h>

#include "force_spec_ctrl.h"

#define MAX_VCPUS	8
#define MAX_UPDATERS	4

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
 * The record of the vCPU's first entry after this call began. A read of the
 * view asks the vCPU to record its next entry and waits for it ("fresh"):
 * that entry comes after the read, hence after whatever returned before it.
 * Checks that it ran a generation no older than @min_gen, and loaded the
 * merge of the guest's view with the configuration it enforced.
 */
static void observe_next_entry(struct kvm_vcpu *vcpu, __u64 min_gen, struct fsc_view *v)
{
	int polls = 0;

	do {
		TEST_ASSERT(++polls < MAX_POLLS,
			    "vCPU%u made no VM entry after generation %llu", vcpu->id, min_gen);
		fsc_read_view(vcpu, v);
	} while (!v->fresh);

	TEST_ASSERT(v->applied_generation >= min_gen,
		    "vCPU%u: an entry after KVM_ENABLE_CAP returned generation %llu ran generation %llu",
		    vcpu->id, min_gen, v->applied_generation);
	if (v->mask)
		TEST_ASSERT(v->effective == ((v->guest & ~v->mask) | (v->value & v->mask)),
			    "vCPU%u, generation %llu: loaded 0x%llx for guest view 0x%llx, mask 0x%llx value 0x%llx",
			    vcpu->id, v->applied_generation, v->effective, v->guest,
			    v->mask, v->value);
}

/*
 * After KVM_ENABLE_CAP returned generation @gen, the only update: the
 * vCPU's next entry runs exactly that generation and configuration.
 */
static void check_next_entry(struct kvm_vcpu *vcpu, __u64 gen, __u64 mask, __u64 value)
{
	struct fsc_view v;

	observe_next_entry(vcpu, gen, &v);
	TEST_ASSERT(v.applied_generation == gen,
		    "vCPU%u: an entry after KVM_ENABLE_CAP returned generation %llu ran generation %llu",
		    vcpu->id, gen, v.applied_generation);
	TEST_ASSERT(v.mask == mask && v.value == value,
		    "vCPU%u, generation %llu: enforced mask 0x%llx value 0x%llx, want 0x%llx 0x%llx",
		    vcpu->id, gen, v.mask, v.value, mask, value);
}

struct config {
	__u64 mask, value;
};

/* Each updater's own configurations: no two threads issue the same one. */
static const struct config updater_configs[MAX_UPDATERS][3] = {
	{ { SPEC_CTRL_SSBD, SPEC_CTRL_SSBD },
	  { SPEC_CTRL_IBRS | SPEC_CTRL_SSBD, SPEC_CTRL_IBRS },
	  { SPEC_CTRL_STIBP, 0 } },
	{ { SPEC_CTRL_IBRS, SPEC_CTRL_IBRS },
	  { SPEC_CTRL_STIBP | SPEC_CTRL_SSBD, SPEC_CTRL_STIBP },
	  { 0, 0 } },
	{ { SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD, SPEC_CTRL_STIBP },
	  { SPEC_CTRL_SSBD, 0 },
	  { SPEC_CTRL_IBRS | SPEC_CTRL_STIBP, SPEC_CTRL_IBRS | SPEC_CTRL_STIBP } },
	{ { SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD, 0 },
	  { SPEC_CTRL_IBRS, 0 },
	  { SPEC_CTRL_STIBP, SPEC_CTRL_STIBP } },
};

/* A configuration some updater issues, or -1. */
static int config_owner(__u64 mask, __u64 value, int updaters)
{
	int t, k;

	for (t = 0; t < updaters; t++) {
		for (k = 0; k < 3; k++) {
			const struct config *c = &updater_configs[t][k];

			if (c->mask == mask && c->value == value)
				return t;
		}
	}
	return -1;
}

struct observation {
	__u64 gen;
	struct config config;
};

struct updater {
	pthread_t thread;
	int id, updaters, updates, nr_vcpus;
	struct kvm_vm *vm;
	struct kvm_vcpu **vcpus;
	__u64 base;		/* the VM's generation before any update */
	struct observation *obs;	/* updates * nr_vcpus */
};

/* Updates that have returned, all updaters. */
static __u64 returned;

static void *updater_thread(void *arg)
{
	struct updater *u = arg;
	__u64 last[MAX_VCPUS] = { 0 };
	struct fsc_view v;
	int k, i;

	for (k = 0; k < u->updates; k++) {
		const struct config *c = &updater_configs[u->id][k % 3];
		/*
		 * Generations count updates from base + 1: this one is newer
		 * than every update that returned before it began.
		 */
		__u64 min_gen = u->base + __atomic_load_n(&returned, __ATOMIC_SEQ_CST) + 1;

		fsc_vm_set(u->vm, c->mask, c->value);
		__atomic_add_fetch(&returned, 1, __ATOMIC_SEQ_CST);
		for (i = 0; i < u->nr_vcpus; i++) {
			struct observation *o = &u->obs[k * u->nr_vcpus + i];
			int owner;

			observe_next_entry(u->vcpus[i], min_gen, &v);
			owner = config_owner(v.mask, v.value, u->updaters);
			TEST_ASSERT(owner >= 0,
				    "updater %d, vCPU%d, generation %llu: enforced mask 0x%llx value 0x%llx, which no updater issued",
				    u->id, i, v.applied_generation, v.mask, v.value);
			/* A vCPU never goes back to an older configuration. */
			TEST_ASSERT(v.applied_generation >= last[i],
				    "updater %d, vCPU%d: generation %llu after %llu",
				    u->id, i, v.applied_generation, last[i]);
			last[i] = v.applied_generation;
			*o = (struct observation){ v.applied_generation, { v.mask, v.value } };
		}
	}
	return NULL;
}

/*
 * @updaters threads, @updates each, at once; then the checks no single
 * observation can make.
 */
static void concurrent_updates(struct kvm_vm *vm, struct kvm_vcpu **vcpus, int nr_vcpus,
			       int updaters, int updates)
{
	struct updater u[MAX_UPDATERS];
	struct config *by_gen;
	bool *seen;
	__u64 base, total = (__u64)updaters * updates, gen;
	struct fsc_view v;
	int t, i;

	fsc_read_view(vcpus[0], &v);
	base = v.vm_generation;
	by_gen = calloc(total + 1, sizeof(*by_gen));
	seen = calloc(total + 1, sizeof(*seen));
	TEST_ASSERT(by_gen && seen, "out of memory");
	for (t = 0; t < updaters; t++) {
		u[t] = (struct updater){
			.id = t, .updaters = updaters, .updates = updates, .nr_vcpus = nr_vcpus,
			.vm = vm, .vcpus = vcpus, .base = base,
			.obs = calloc((size_t)updates * nr_vcpus, sizeof(struct observation)),
		};
		TEST_ASSERT(u[t].obs, "out of memory");
		pthread_create(&u[t].thread, NULL, updater_thread, &u[t]);
	}
	for (t = 0; t < updaters; t++)
		pthread_join(u[t].thread, NULL);

	/* Every update made one generation. */
	fsc_read_view(vcpus[0], &v);
	TEST_ASSERT(v.vm_generation == base + total,
		    "%llu updates took the VM from generation %llu to %llu",
		    total, base, v.vm_generation);
	/* One configuration per generation, whoever saw it. */
	for (t = 0; t < updaters; t++) {
		for (i = 0; i < updates * nr_vcpus; i++) {
			const struct observation *o = &u[t].obs[i];

			TEST_ASSERT(o->gen > base && o->gen <= base + total,
				    "generation %llu seen, updates made %llu to %llu",
				    o->gen, base + 1, base + total);
			gen = o->gen - base;
			if (!seen[gen]) {
				seen[gen] = true;
				by_gen[gen] = o->config;
			}
			TEST_ASSERT(by_gen[gen].mask == o->config.mask &&
				    by_gen[gen].value == o->config.value,
				    "generation %llu enforced as mask 0x%llx value 0x%llx and as 0x%llx 0x%llx",
				    o->gen, by_gen[gen].mask, by_gen[gen].value,
				    o->config.mask, o->config.value);
		}
		free(u[t].obs);
	}
	free(by_gen);
	free(seen);

	/* Alone again: the next update is the next generation, exactly. */
	fsc_vm_set(vm, SPEC_CTRL_SSBD, SPEC_CTRL_SSBD);
	for (i = 0; i < nr_vcpus; i++)
		check_next_entry(vcpus[i], base + total + 1, SPEC_CTRL_SSBD, SPEC_CTRL_SSBD);
}

/* Tell the guests to finish their loops, and wait for the vCPU threads. */
static void stop_vcpus(struct kvm_vm *vm, pthread_t *threads, int nr_vcpus)
{
	int i;

	stop = true;
	sync_global_to_guest(vm, stop);
	for (i = 0; i < nr_vcpus; i++)
		pthread_join(threads[i], NULL);
}

int main(int argc, char *argv[])
{
	static const struct config configs[] = {
		{ SPEC_CTRL_SSBD, SPEC_CTRL_SSBD },
		{ SPEC_CTRL_IBRS | SPEC_CTRL_SSBD, SPEC_CTRL_IBRS },
		{ SPEC_CTRL_STIBP, 0 },
		{ 0, 0 },
		{ SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD, SPEC_CTRL_STIBP },
	};
	int nr_vcpus = 2, updates = 1000, updaters = 1, measured, opt, i;
	bool verbose = false;
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	pthread_t threads[MAX_VCPUS];
	__u64 ipis, exits = 0, gen;
	char backend[64];
	struct fsc_view v;
	struct kvm_vm *vm;
	int polls;

	while ((opt = getopt(argc, argv, "v:n:u:d")) != -1) {
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
		case 'u':
			updaters = atoi(optarg);
			break;
		default:
			TEST_FAIL("usage: %s [-v vCPUs] [-n updates] [-u updaters] [-d]", argv[0]);
		}
	}
	TEST_ASSERT(nr_vcpus >= 1 && nr_vcpus <= MAX_VCPUS, "1 to %d vCPUs", MAX_VCPUS);
	TEST_ASSERT(updaters >= 1 && updaters <= MAX_UPDATERS, "1 to %d updaters", MAX_UPDATERS);
	TEST_ASSERT(updates >= 1, "at least one update");
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

	if (updaters > 1) {
		concurrent_updates(vm, vcpus, nr_vcpus, updaters, updates);
		stop_vcpus(vm, threads, nr_vcpus);
		printf("KFSC-FIGURE %d threads updated the VM-wide configuration %d times each "
		       "at once, %d vCPUs spinning on WRMSR/RDMSR, every vCPU's next entry "
		       "checked after each update\n", updaters, updates, nr_vcpus);
		kvm_vm_free(vm);
		return 0;
	}

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
	fsc_debug_backend(vcpus[0], backend, sizeof(backend));
	TEST_ASSERT(strcmp(backend, "vmx-virt") || 2 * ipis >= (__u64)measured * nr_vcpus,
		    "%d updates sent %llu IPIs to %d spinning vCPUs on vmx-virt: updates do not kick them",
		    measured, (unsigned long long)ipis, nr_vcpus);

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

	stop_vcpus(vm, threads, nr_vcpus);

	printf("KFSC-FIGURE %d updates of the VM-wide configuration, %d vCPUs spinning on "
	       "WRMSR/RDMSR: %.2f IPIs and %.2f VM exits per update; %d more, each vCPU's "
	       "next entry checked\n",
	       measured, nr_vcpus, (double)ipis / measured, (double)exits / measured, updates);
	printf("KFSC-BENCH-KICKS vcpus=%d updates=%d ipis_per_update=%.2f exits_per_update=%.2f\n",
	       nr_vcpus, measured, (double)ipis / measured, (double)exits / measured);
	kvm_vm_free(vm);
	return 0;
}
