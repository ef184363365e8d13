// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_CAP_FORCE_SPEC_CTRL discovery (contract items 1, 2, 11):
 * KVM_CHECK_EXTENSION on /dev/kvm and on a VM fd, and
 * KVM_GET_SUPPORTED_FORCE_SPEC_CTRL, with the module loaded or not.
 *
 * The expectations come from the harness, which knows the emulated CPU:
 *   -u           the module is not loaded: the capability is absent and the
 *                ioctl unknown, as in stock KVM
 *   -c N         the module is loaded, KVM_CHECK_EXTENSION must return N
 *   -s BITS      ... and KVM_GET_SUPPORTED_FORCE_SPEC_CTRL must return BITS
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "force_spec_ctrl.h"

static void check_unloaded(int kvm_fd)
{
	struct kvm_vm *vm;
	__u64 supported = 0;
	int r;

	ksft_test_result(!ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_FORCE_SPEC_CTRL),
			 "unloaded: /dev/kvm has no KVM_CAP_FORCE_SPEC_CTRL\n");

	r = ioctl(kvm_fd, KVM_GET_SUPPORTED_FORCE_SPEC_CTRL, &supported);
	ksft_test_result(r == -1 && errno == EINVAL,
			 "unloaded: KVM_GET_SUPPORTED_FORCE_SPEC_CTRL fails with EINVAL (r=%d errno=%d)\n",
			 r, errno);

	vm = vm_create_barebones();
	ksft_test_result(!vm_check_cap(vm, KVM_CAP_FORCE_SPEC_CTRL),
			 "unloaded: VM has no KVM_CAP_FORCE_SPEC_CTRL\n");
	r = __vm_enable_cap(vm, KVM_CAP_FORCE_SPEC_CTRL, 0);
	ksft_test_result(r == -1 && errno == EINVAL,
			 "unloaded: KVM_ENABLE_CAP fails with EINVAL (r=%d errno=%d)\n", r, errno);
	kvm_vm_free(vm);
}

static void check_loaded(int kvm_fd, int want_cap, __u64 want_supported)
{
	struct kvm_vm *vm;
	__u64 supported = ~0ull;
	int cap, r;

	cap = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_FORCE_SPEC_CTRL);
	ksft_test_result(cap == want_cap, "loaded: /dev/kvm KVM_CHECK_EXTENSION = %d (want %d)\n",
			 cap, want_cap);

	r = ioctl(kvm_fd, KVM_GET_SUPPORTED_FORCE_SPEC_CTRL, &supported);
	ksft_test_result(r == 0 && supported == want_supported,
			 "loaded: supported = 0x%llx (want 0x%llx, r=%d)\n",
			 (unsigned long long)supported, (unsigned long long)want_supported, r);

	vm = vm_create_barebones();
	cap = vm_check_cap(vm, KVM_CAP_FORCE_SPEC_CTRL);
	ksft_test_result(cap == want_cap, "loaded: VM KVM_CHECK_EXTENSION = %d (want %d)\n",
			 cap, want_cap);
	/* Without IA32_SPEC_CTRL, nothing can be forced, but "off" is valid. */
	if (!want_cap) {
		r = fsc_enable(vm->fd, 0, 0, 0, 0);
		ksft_test_result(!r, "loaded, no MSR: forcing off is accepted (%d)\n", r);
		r = fsc_enable(vm->fd, SPEC_CTRL_SSBD, 0, 0, 0);
		ksft_test_result(r == -EOPNOTSUPP, "loaded, no MSR: forcing a bit fails with EOPNOTSUPP (%d)\n", r);
	}
	kvm_vm_free(vm);
}

int main(int argc, char *argv[])
{
	int want_cap = -1, unloaded = 0, opt, kvm_fd;
	__u64 want_supported = 0;

	while ((opt = getopt(argc, argv, "uc:s:")) != -1) {
		switch (opt) {
		case 'u':
			unloaded = 1;
			break;
		case 'c':
			want_cap = atoi(optarg);
			break;
		case 's':
			want_supported = strtoull(optarg, NULL, 0);
			break;
		default:
			TEST_FAIL("usage: %s -u | -c CAP -s SUPPORTED", argv[0]);
		}
	}
	TEST_ASSERT(unloaded || want_cap >= 0, "say -u, or -c and -s");

	kvm_fd = open_kvm_dev_path_or_exit();
	ksft_print_header();
	ksft_set_plan(unloaded ? 4 : want_cap ? 3 : 5);
	if (unloaded)
		check_unloaded(kvm_fd);
	else
		check_loaded(kvm_fd, want_cap, want_supported);
	close(kvm_fd);
	ksft_finished();
}
