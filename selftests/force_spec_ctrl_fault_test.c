// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fault injection on the module's paths (debug kernel: FAILSLAB,
 * FAIL_PAGE_ALLOC): VM creation, vCPU creation, KVM_ENABLE_CAP on VM and
 * vCPU fds, and a read of the debug view, each with the n-th allocation of
 * the calling task failed (/proc/thread-self/fail-nth), for n = 1, 2, ...
 * until the operation no longer reaches an n-th allocation (or, with -c, up
 * to that n); the whole round repeats until at least -n faults were
 * injected, and runs at least once.
 *
 * Every injected failure must reach userspace as ENOMEM (or be absorbed:
 * the call succeeds), and no VM may stay bound to the module: after each
 * attempt, with every fd closed, the module's reference count is 0 again.
 * The kernel must keep running; the suite then unloads the module and
 * scans for leaks.
 *
 * Usage: force_spec_ctrl_fault_test [-n MIN_FAULTS] [-c MAX_N]
 *
 * The full sweep creates about 1000 VMs; the main test kernel runs it. The
 * debug kernel, where KASAN makes an allocation cost about 5 ms of emulated
 * time, runs one round of the first allocations of each operation (-c).
 */
#include <limits.h>

#include "force_spec_ctrl.h"

enum op { OP_CREATE_VM, OP_CREATE_VCPU, OP_VM_CAP, OP_VCPU_CAP, OP_DEBUG_VIEW, NR_OPS };

static const char *const op_names[NR_OPS] = {
	"KVM_CREATE_VM", "KVM_CREATE_VCPU", "VM KVM_ENABLE_CAP", "vCPU KVM_ENABLE_CAP",
	"debug view read",
};

static int kvm_fd, fail_nth_fd;

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	TEST_ASSERT(write(fd, s, strlen(s)) == (ssize_t)strlen(s), "write %s: %s", path,
		    strerror(errno));
	close(fd);
}

static void set_fail_nth(unsigned int n)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u", n);
	TEST_ASSERT(pwrite(fail_nth_fd, buf, strlen(buf), 0) == (ssize_t)strlen(buf),
		    "fail-nth: %s", strerror(errno));
}

/* Whether the fault set up with set_fail_nth() was injected; disarms it. */
static bool fault_injected(void)
{
	char buf[16] = {};
	bool injected;

	TEST_ASSERT(pread(fail_nth_fd, buf, sizeof(buf) - 1, 0) > 0, "fail-nth: %s",
		    strerror(errno));
	injected = atoi(buf) == 0;
	set_fail_nth(0);
	return injected;
}

static unsigned long module_refs(void)
{
	FILE *f = fopen("/sys/module/kvm_force_spec_ctrl/refcnt", "r");
	unsigned long n = ~0UL;

	TEST_ASSERT(f, "kvm_force_spec_ctrl not loaded");
	TEST_ASSERT(fscanf(f, "%lu", &n) == 1, "refcnt");
	fclose(f);
	return n;
}

/* Set up what @op needs, without faults: a VM, and a vCPU for some ops. */
static void prepare(enum op op, int *vm_fd, int *vcpu_fd)
{
	*vm_fd = *vcpu_fd = -1;
	if (op == OP_CREATE_VM)
		return;
	*vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	TEST_ASSERT(*vm_fd >= 0, "KVM_CREATE_VM: %s", strerror(errno));
	if (op == OP_CREATE_VCPU || op == OP_VM_CAP)
		return;
	*vcpu_fd = ioctl(*vm_fd, KVM_CREATE_VCPU, 0);
	TEST_ASSERT(*vcpu_fd >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
}

/* The operation under fault; returns 0 or -errno. */
static int do_op(enum op op, int *vm_fd, int *vcpu_fd)
{
	char path[128], buf[2048];
	int fd, r;

	switch (op) {
	case OP_CREATE_VM:
		*vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
		return *vm_fd >= 0 ? 0 : -errno;
	case OP_CREATE_VCPU:
		*vcpu_fd = ioctl(*vm_fd, KVM_CREATE_VCPU, 0);
		return *vcpu_fd >= 0 ? 0 : -errno;
	case OP_VM_CAP:
		return fsc_enable(*vm_fd, SPEC_CTRL_SSBD, SPEC_CTRL_SSBD, 0, 0);
	case OP_VCPU_CAP:
		return fsc_enable(*vcpu_fd, SPEC_CTRL_IBRS, 0, 0, 0);
	case OP_DEBUG_VIEW:
		snprintf(path, sizeof(path), "/sys/kernel/debug/kvm/%d-%d/vcpu0/force_spec_ctrl",
			 getpid(), *vm_fd);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return -errno;
		r = read(fd, buf, sizeof(buf)) < 0 ? -errno : 0;
		close(fd);
		return r;
	default:
		TEST_FAIL("op %d", op);
	}
	return 0;
}

int main(int argc, char *argv[])
{
	unsigned long min_faults = 1000, attempts = 0, faults = 0, enomem = 0, absorbed = 0;
	unsigned int max_n = UINT_MAX;
	unsigned long per_op[NR_OPS] = {};
	int opt, vm_fd, vcpu_fd;
	unsigned int n;
	enum op op;

	while ((opt = getopt(argc, argv, "n:c:")) != -1) {
		switch (opt) {
		case 'n':
			min_faults = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			max_n = strtoul(optarg, NULL, 0);
			break;
		default:
			TEST_FAIL("usage: %s [-n min_faults] [-c max_n]", argv[0]);
		}
	}
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL));
	fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	TEST_ASSERT(fail_nth_fd >= 0, "/proc/thread-self/fail-nth: %s (CONFIG_FAULT_INJECTION?)",
		    strerror(errno));
	/* Fail GFP_KERNEL allocations too, and every page order. */
	write_file("/sys/kernel/debug/failslab/ignore-gfp-wait", "N");
	write_file("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N");
	write_file("/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N");
	write_file("/sys/kernel/debug/fail_page_alloc/min-order", "0");
	/* The injected failures are expected: no stack trace for each. */
	write_file("/sys/kernel/debug/failslab/verbose", "0");
	write_file("/sys/kernel/debug/fail_page_alloc/verbose", "0");
	kvm_fd = open_kvm_dev_path_or_exit();
	TEST_ASSERT(module_refs() == 0, "module in use before the test");

	do {
		for (op = 0; op < NR_OPS; op++) {
			for (n = 1; n <= max_n; n++) {
				bool injected;
				int r;

				prepare(op, &vm_fd, &vcpu_fd);
				set_fail_nth(n);
				r = do_op(op, &vm_fd, &vcpu_fd);
				injected = fault_injected();
				attempts++;
				if (injected) {
					faults++;
					per_op[op]++;
					TEST_ASSERT(!r || r == -ENOMEM,
						    "%s with allocation %u failed: %s, want ENOMEM",
						    op_names[op], n, strerror(-r));
					if (r)
						enomem++;
					else
						absorbed++;
				} else {
					TEST_ASSERT(!r, "%s without a fault: %s", op_names[op],
						    strerror(-r));
				}
				if (vcpu_fd >= 0)
					close(vcpu_fd);
				if (vm_fd >= 0)
					close(vm_fd);
				/* KVM frees a VM when its last fd is closed. */
				TEST_ASSERT(module_refs() == 0,
					    "%s, allocation %u: %lu VMs still bound to the module",
					    op_names[op], n, module_refs());
				if (!injected)
					break;	/* past the last allocation of @op */
			}
		}
	} while (faults < min_faults);
	printf("KFSC-FIGURE fault injection: %lu attempts, %lu injected faults (%lu ENOMEM, "
	       "%lu absorbed)%s; per operation:", attempts, faults, enomem, absorbed,
	       max_n == UINT_MAX ? "" : ", the first allocations of each");
	for (op = 0; op < NR_OPS; op++)
		printf(" %s %lu%s", op_names[op], per_op[op], op + 1 < NR_OPS ? "," : "\n");
	return 0;
}
