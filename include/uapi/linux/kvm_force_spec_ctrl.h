/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * KVM_CAP_FORCE_SPEC_CTRL: force bits of the guest's IA32_SPEC_CTRL MSR on
 * or off behind the guest's back. The ABI is described in
 * Documentation/api.rst of the kvm-force-spec-ctrl project.
 *
 * This header is the one definition of the ABI's numbers; the build checks
 * that none of them collides with <linux/kvm.h> of the kernel it targets.
 */
#ifndef _UAPI_LINUX_KVM_FORCE_SPEC_CTRL_H
#define _UAPI_LINUX_KVM_FORCE_SPEC_CTRL_H

#include <linux/kvm.h>
#include <linux/types.h>

/*
 * Far above upstream's capability numbers (251 in 7.3), so that upstream
 * growth does not collide with an out-of-tree capability.
 */
#define KVM_CAP_FORCE_SPEC_CTRL			1024

/* ioctl on /dev/kvm: the bits that can be forced on, as a __u64 (out). */
#define KVM_GET_SUPPORTED_FORCE_SPEC_CTRL	_IOR(KVMIO, 0xf0, __u64)

/*
 * KVM_ENABLE_CAP(KVM_CAP_FORCE_SPEC_CTRL), on a VM fd or a vCPU fd:
 *   args[0]  mask: the bits of IA32_SPEC_CTRL the host controls
 *   args[1]  value: what the masked bits are forced to (value & ~mask == 0)
 *   args[2]  flags, below
 *   args[3]  must be 0
 */
#define KVM_FORCE_SPEC_CTRL_ARG_MASK		0
#define KVM_FORCE_SPEC_CTRL_ARG_VALUE		1
#define KVM_FORCE_SPEC_CTRL_ARG_FLAGS		2
#define KVM_FORCE_SPEC_CTRL_ARG_RESERVED	3

/* vCPU fd only, with mask = value = 0: drop the vCPU's own configuration. */
#define KVM_FORCE_SPEC_CTRL_CLEAR		(1ULL << 0)
#define KVM_FORCE_SPEC_CTRL_VALID_FLAGS		KVM_FORCE_SPEC_CTRL_CLEAR

#endif /* _UAPI_LINUX_KVM_FORCE_SPEC_CTRL_H */
