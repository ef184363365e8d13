// SPDX-License-Identifier: GPL-2.0-only
/*
 * Helper of the life-cycle suite (contract item 11): create a VM, enforce
 * a configuration, run the guest once, create the file named by argv[1],
 * then wait to be killed. While it waits, the module is in use by a VM and
 * must not unload; once it is gone, it must.
 */
#include <fcntl.h>

#include "force_spec_ctrl.h"

static void guest_code(void)
{
	wrmsr(MSR_IA32_SPEC_CTRL, SPEC_CTRL_STIBP);
	GUEST_SYNC(rdmsr(MSR_IA32_SPEC_CTRL));
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int fd;

	TEST_ASSERT(argc == 2, "usage: %s READY_FILE", argv[0]);
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	fsc_vm_set(vm, SPEC_CTRL_SSBD, SPEC_CTRL_SSBD & fsc_supported());
	TEST_ASSERT_EQ(fsc_sync(vcpu), SPEC_CTRL_STIBP);
	fd = open(argv[1], O_CREAT | O_WRONLY, 0644);
	TEST_ASSERT(fd >= 0, "create %s", argv[1]);
	close(fd);
	for (;;)
		pause();
}
