// SPDX-License-Identifier: GPL-2.0-only
/*
 * Module unload racing VM and vCPU creation (contract item 11 under
 * pressure): several threads create VMs, create vCPUs in them, enable
 * forcing and read the debug view, in a loop, while the main thread loads
 * and unloads the module (finit_module/delete_module) as fast as it can.
 *
 * Checked, continuously: a VM is either bound to the module (its
 * KVM_CHECK_EXTENSION says so, KVM_ENABLE_CAP works) and then the module is
 * loaded and cannot be unloaded while the VM lives, or it is unbound and
 * behaves as on stock KVM (KVM_ENABLE_CAP fails with EINVAL); never a VM
 * bound to a module that went away. The kernel must survive it (the suite
 * then checks the log for warnings).
 *
 * Usage: force_spec_ctrl_unload_race MODULE.ko [-t THREADS] [-n CYCLES]
 */
#include <pthread.h>
#include <sys/syscall.h>

#include "force_spec_ctrl.h"

static volatile bool stop;
static int kvm_fd;
static unsigned long bound_vms, unbound_vms, unloads, busy;

static bool module_loaded(void)
{
	return !access("/sys/module/kvm_force_spec_ctrl", F_OK);
}

static void *creator(void *arg)
{
	unsigned long bound = 0, unbound = 0;
	unsigned int seed = (unsigned long)arg;

	while (!stop) {
		int vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0), vcpu_fd, cap, r;

		TEST_ASSERT(vm_fd >= 0, "KVM_CREATE_VM: %s", strerror(errno));
		cap = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_FORCE_SPEC_CTRL);
		vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
		TEST_ASSERT(vcpu_fd >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
		r = fsc_enable(vm_fd, SPEC_CTRL_SSBD, 0, 0, 0);
		if (cap > 0) {
			/* Bound: the module is pinned by this VM. */
			TEST_ASSERT(!r, "bound VM: KVM_ENABLE_CAP %d", r);
			TEST_ASSERT(module_loaded(), "a VM is bound to an unloaded module");
			TEST_ASSERT(!fsc_enable(vcpu_fd, SPEC_CTRL_IBRS, 0, 0, 0),
				    "bound vCPU: KVM_ENABLE_CAP");
			bound++;
		} else {
			TEST_ASSERT(r == -EINVAL, "unbound VM: KVM_ENABLE_CAP %d, want EINVAL", r);
			unbound++;
		}
		close(vcpu_fd);
		close(vm_fd);
		/*
		 * A random pause: the module can only go while no VM pins it,
		 * so back-to-back VMs from every thread would starve the
		 * unloader; short gaps make the unload race the creations.
		 */
		usleep(rand_r(&seed) % 2000);
	}
	__atomic_add_fetch(&bound_vms, bound, __ATOMIC_RELAXED);
	__atomic_add_fetch(&unbound_vms, unbound, __ATOMIC_RELAXED);
	return arg;
}

int main(int argc, char *argv[])
{
	int threads = 3, cycles = 200, opt, i, mod_fd;
	pthread_t t[16];
	const char *ko;

	TEST_ASSERT(argc >= 2, "usage: %s MODULE.ko [-t threads] [-n cycles]", argv[0]);
	ko = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "t:n:")) != -1) {
		switch (opt) {
		case 't':
			threads = atoi(optarg);
			break;
		case 'n':
			cycles = atoi(optarg);
			break;
		default:
			TEST_FAIL("bad option");
		}
	}
	TEST_ASSERT(threads >= 1 && threads <= 16, "1 to 16 threads");
	TEST_ASSERT(!module_loaded(), "load nothing before: the test loads the module itself");
	mod_fd = open(ko, O_RDONLY);
	TEST_ASSERT(mod_fd >= 0, "open %s: %s", ko, strerror(errno));
	kvm_fd = open_kvm_dev_path_or_exit();

	for (i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, creator, (void *)(unsigned long)(i + 1));
	for (i = 0; i < cycles; i++) {
		TEST_ASSERT(!syscall(SYS_finit_module, mod_fd, "", 0), "finit_module: %s",
			    strerror(errno));
		/* Unload as soon as no VM pins it; EWOULDBLOCK while one does. */
		while (syscall(SYS_delete_module, "kvm_force_spec_ctrl", O_NONBLOCK)) {
			TEST_ASSERT(errno == EWOULDBLOCK || errno == EAGAIN,
				    "delete_module: %s", strerror(errno));
			busy++;
			sched_yield();
		}
		unloads++;
	}
	stop = true;
	for (i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	TEST_ASSERT(!module_loaded(), "module left loaded");
	printf("KFSC-FIGURE unload race: %lu load/unload cycles against %d creating threads: "
	       "%lu VMs bound, %lu unbound, %lu unload attempts refused while VMs lived\n",
	       unloads, threads, bound_vms, unbound_vms, busy);
	return 0;
}
