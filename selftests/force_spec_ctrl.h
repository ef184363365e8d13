/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the KVM_CAP_FORCE_SPEC_CTRL selftests: the capability's
 * ioctls and the module's per-vCPU debug view.
 */
#ifndef SELFTEST_FORCE_SPEC_CTRL_H
#define SELFTEST_FORCE_SPEC_CTRL_H

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include <linux/kvm_force_spec_ctrl.h>

#include "kvm_util.h"
#include "processor.h"

/*
 * AMD's enumeration of IA32_SPEC_CTRL (CPUID Fn8000_0008 EBX) and of
 * V_SPEC_CTRL (Fn8000_000A EDX[20]), not (yet) in the library's processor.h.
 */
#define X86_FEATURE_AMD_IBRS	KVM_X86_CPU_FEATURE(0x80000008, 0, EBX, 14)
#define X86_FEATURE_AMD_STIBP	KVM_X86_CPU_FEATURE(0x80000008, 0, EBX, 15)
#define X86_FEATURE_AMD_SSBD	KVM_X86_CPU_FEATURE(0x80000008, 0, EBX, 24)
#define X86_FEATURE_V_SPEC_CTRL	KVM_X86_CPU_FEATURE(0x8000000A, 0, EDX, 20)

/*
 * Whether KVM offers guests IA32_SPEC_CTRL: Intel's CPUID bit or one of
 * AMD's, as KVM's guest_has_spec_ctrl_msr() reads them. (KVM reports Intel's
 * bit on AMD only with AMD_IBPB_RET.)
 */
static inline bool fsc_kvm_has_spec_ctrl(void)
{
	return kvm_cpu_has(X86_FEATURE_SPEC_CTRL) || kvm_cpu_has(X86_FEATURE_AMD_IBRS) ||
	       kvm_cpu_has(X86_FEATURE_AMD_STIBP) || kvm_cpu_has(X86_FEATURE_AMD_SSBD);
}

/*
 * The host's own IA32_SPEC_CTRL on CPU 0, through the msr driver
 * (/dev/cpu/0/msr): a test that reads it pins itself to CPU 0, so that it is
 * the value of the CPU its vCPU runs on.
 */
static inline __u64 fsc_host_spec_ctrl(void)
{
	__u64 v = ~0ull;
	int fd = open("/dev/cpu/0/msr", O_RDONLY);

	TEST_ASSERT(fd >= 0, "open /dev/cpu/0/msr: %s", strerror(errno));
	TEST_ASSERT(pread(fd, &v, sizeof(v), MSR_IA32_SPEC_CTRL) == sizeof(v),
		    "read host IA32_SPEC_CTRL: %s", strerror(errno));
	close(fd);
	return v;
}

/*
 * What the host spent on IA32_SPEC_CTRL on CPU 0, counted by the emulator
 * (scripts/bochs/0009; a real CPU charges far more for these than Bochs'
 * TSC shows): RDMSR and WRMSR of the MSR, VMREAD/VMWRITE of the VMCS mask
 * and shadow fields. The caller pins itself and its vCPU to CPU 0.
 */
#define FSC_COUNT_MSR	0x4b465300
struct fsc_counts {
	__u64 rdmsr, wrmsr, vmcs;
};

static inline void fsc_host_counts(struct fsc_counts *c)
{
	int fd = open("/dev/cpu/0/msr", O_RDONLY);
	__u64 v[3];
	int i;

	TEST_ASSERT(fd >= 0, "open /dev/cpu/0/msr: %s", strerror(errno));
	for (i = 0; i < 3; i++)
		TEST_ASSERT(pread(fd, &v[i], sizeof(v[i]), FSC_COUNT_MSR + i) == sizeof(v[i]),
			    "read the emulator's count MSR 0x%x (scripts/bochs/0009): %s",
			    FSC_COUNT_MSR + i, strerror(errno));
	close(fd);
	c->rdmsr = v[0];
	c->wrmsr = v[1];
	c->vmcs = v[2];
}

/* Pin the calling thread (and the vCPU it runs) to CPU 0. */
static inline void fsc_pin_cpu0(void)
{
	cpu_set_t cpus;

	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(cpus), &cpus), "pin to CPU 0");
}

/* KVM_ENABLE_CAP(KVM_CAP_FORCE_SPEC_CTRL) on a VM or vCPU fd; -errno or 0. */
static inline int fsc_enable(int fd, __u64 mask, __u64 value, __u64 flags, __u64 reserved)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_FORCE_SPEC_CTRL,
		.args = {
			[KVM_FORCE_SPEC_CTRL_ARG_MASK] = mask,
			[KVM_FORCE_SPEC_CTRL_ARG_VALUE] = value,
			[KVM_FORCE_SPEC_CTRL_ARG_FLAGS] = flags,
			[KVM_FORCE_SPEC_CTRL_ARG_RESERVED] = reserved,
		},
	};

	return ioctl(fd, KVM_ENABLE_CAP, &cap) ? -errno : 0;
}

static inline void fsc_vm_set(struct kvm_vm *vm, __u64 mask, __u64 value)
{
	int r = fsc_enable(vm->fd, mask, value, 0, 0);

	TEST_ASSERT(!r, "KVM_ENABLE_CAP(mask=0x%llx, value=0x%llx) on VM: %d",
		    (unsigned long long)mask, (unsigned long long)value, r);
}

static inline __u64 fsc_supported(void)
{
	int kvm_fd = open_kvm_dev_path_or_exit();
	__u64 supported;

	TEST_ASSERT(!ioctl(kvm_fd, KVM_GET_SUPPORTED_FORCE_SPEC_CTRL, &supported),
		    "KVM_GET_SUPPORTED_FORCE_SPEC_CTRL: %s", strerror(errno));
	close(kvm_fd);
	return supported;
}

/*
 * After an I/O exit: the GUEST_SYNC value; a guest assertion or any other
 * ucall fails the test.
 */
static inline __u64 fsc_ucall_sync(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		return uc.args[1];
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
	default:
		TEST_FAIL("unexpected ucall %lu", uc.cmd);
	}
	return 0;
}

/* Run the vCPU to its next GUEST_SYNC and return the synced value. */
static inline __u64 fsc_sync(struct kvm_vcpu *vcpu)
{
	vcpu_run(vcpu);
	return fsc_ucall_sync(vcpu);
}

/* The vCPU's debug view: its file in KVM's per-vCPU debugfs directory. */
static inline void fsc_debug_path(struct kvm_vcpu *vcpu, char *path, size_t size)
{
	snprintf(path, size, "/sys/kernel/debug/kvm/%d-%d/vcpu%u/force_spec_ctrl",
		 getpid(), vcpu->vm->fd, vcpu->id);
}

/* One field ("name: value") of the vCPU's debug view; fails if absent. */
static inline __u64 fsc_debug_u64(struct kvm_vcpu *vcpu, const char *field)
{
	char path[128], line[128];
	size_t len = strlen(field);
	FILE *f;

	fsc_debug_path(vcpu, path, sizeof(path));
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, len) && line[len] == ':') {
			fclose(f);
			return strtoull(line + len + 1, NULL, 0);
		}
	}
	fclose(f);
	TEST_FAIL("no field '%s' in %s", field, path);
	return 0;
}

/*
 * Ask the vCPU to record its next VM entry in the debug view: any read of
 * the view does (the module records an entry only after a change or such a
 * request, so that forcing costs nothing per VM exit). Returns the count of
 * recorded entries so far.
 */
static inline __u64 fsc_request_record(struct kvm_vcpu *vcpu)
{
	return fsc_debug_u64(vcpu, "entries");
}

/*
 * Run the vCPU to its next GUEST_SYNC with that VM entry recorded: the view
 * then shows the first entry after whatever the guest did before the sync.
 */
static inline __u64 fsc_sync_recorded(struct kvm_vcpu *vcpu)
{
	__u64 entries = fsc_request_record(vcpu);
	__u64 v = fsc_sync(vcpu);

	TEST_ASSERT(fsc_debug_u64(vcpu, "entries") > entries,
		    "vCPU%u: the entry into the guest was not recorded", vcpu->id);
	return v;
}

/*
 * The hardware IA32_SPEC_CTRL the guest runs with now: the value loaded at
 * the VM entry of its next GUEST_SYNC, the first entry after whatever the
 * guest just did.
 */
static inline __u64 fsc_next_entry_effective(struct kvm_vcpu *vcpu)
{
	fsc_sync_recorded(vcpu);
	return fsc_debug_u64(vcpu, "effective");
}

/* The numeric fields of one read of the debug view, one snapshot. */
struct fsc_view {
	__u64 vm_generation;
	__u64 applied_generation;
	__u64 mask, value;
	__u64 guest, effective;
	__u64 guest_mode;
	__u64 entries;
	__u64 fresh;	/* the record is of an entry after the read began */
};

static inline void fsc_read_view(struct kvm_vcpu *vcpu, struct fsc_view *v)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{ "vm_generation", offsetof(struct fsc_view, vm_generation) },
		{ "applied_generation", offsetof(struct fsc_view, applied_generation) },
		{ "mask", offsetof(struct fsc_view, mask) },
		{ "value", offsetof(struct fsc_view, value) },
		{ "guest", offsetof(struct fsc_view, guest) },
		{ "effective", offsetof(struct fsc_view, effective) },
		{ "guest_mode", offsetof(struct fsc_view, guest_mode) },
		{ "entries", offsetof(struct fsc_view, entries) },
		{ "fresh", offsetof(struct fsc_view, fresh) },
	};
	char path[128], buf[1024], *line, *save;
	unsigned int seen = 0, i;
	ssize_t n;
	int fd;

	fsc_debug_path(vcpu, path, sizeof(path));
	fd = open(path, O_RDONLY);
	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	/*
	 * One read(), one call of the module's show function: it reads
	 * "entries" before the record of the last entry, so the record is at
	 * least as recent as the count.
	 */
	n = read(fd, buf, sizeof(buf) - 1);
	TEST_ASSERT(n > 0, "read %s: %s", path, strerror(errno));
	close(fd);
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		for (i = 0; i < ARRAY_SIZE(fields); i++) {
			size_t len = strlen(fields[i].name);

			if (!strncmp(line, fields[i].name, len) && line[len] == ':') {
				*(__u64 *)((char *)v + fields[i].off) = strtoull(line + len + 1, NULL, 0);
				seen |= 1u << i;
			}
		}
	}
	TEST_ASSERT(seen == (1u << ARRAY_SIZE(fields)) - 1,
		    "%s lacks fields (seen 0x%x)", path, seen);
}

/* The debug view's backend line, e.g. "vmx-virt". */
static inline void fsc_debug_backend(struct kvm_vcpu *vcpu, char *buf, size_t size)
{
	char path[128], line[128];
	FILE *f;

	fsc_debug_path(vcpu, path, sizeof(path));
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s: %s", path, strerror(errno));
	buf[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "backend: %63s", buf) == 1)
			break;
	fclose(f);
	TEST_ASSERT(buf[0], "no backend in %s", path);
}

/*
 * The backend the harness expects on this host (FSC_BACKEND in the
 * environment, default "vmx-virt"), and whether the vCPU reports it.
 */
static inline const char *fsc_expected_backend(void)
{
	const char *b = getenv("FSC_BACKEND");

	return b && *b ? b : "vmx-virt";
}

static inline bool fsc_backend_is_expected(struct kvm_vcpu *vcpu, char *buf, size_t size)
{
	fsc_debug_backend(vcpu, buf, size);
	return !strcmp(buf, fsc_expected_backend());
}

/*
 * Whether guest RDMSR/WRMSR of IA32_SPEC_CTRL exit under @backend while
 * forcing @mask/@value (contract item 9): never with "virtualize
 * IA32_SPEC_CTRL"; with V_SPEC_CTRL only when a bit is forced off, since the
 * hardware ORs the forced bits in and cannot clear any.
 */
static inline bool fsc_backend_exits(const char *backend, __u64 mask, __u64 value)
{
	if (!strcmp(backend, "vmx-virt"))
		return false;
	if (!strcmp(backend, "svm-vspec"))
		return mask & ~value;
	return true;
}

/*
 * The benchmarks' modes: "unloaded" (stock KVM), "idle" (the module loaded,
 * the VM bound, nothing forced), "forcing" (SSBD forced on), "forcing-off"
 * (SSBD forced off). Checks that the
 * module's presence matches @mode, sets the VM up for it and fills @backend
 * with the debug view's backend ("none" when unloaded).
 */
static inline void fsc_bench_mode(struct kvm_vcpu *vcpu, const char *mode, char *backend,
				  size_t size)
{
	bool loaded = kvm_check_cap(KVM_CAP_FORCE_SPEC_CTRL);

	TEST_ASSERT(!strcmp(mode, "unloaded") || !strcmp(mode, "idle") ||
		    !strcmp(mode, "forcing") || !strcmp(mode, "forcing-off"), "mode %s", mode);
	TEST_ASSERT(!loaded == !strcmp(mode, "unloaded"), "mode %s, but the module is %sloaded",
		    mode, loaded ? "" : "not ");
	if (!strcmp(mode, "forcing"))
		fsc_vm_set(vcpu->vm, SPEC_CTRL_SSBD, SPEC_CTRL_SSBD);
	if (!strcmp(mode, "forcing-off"))
		fsc_vm_set(vcpu->vm, SPEC_CTRL_SSBD, 0);
	if (loaded)
		fsc_debug_backend(vcpu, backend, size);
	else
		snprintf(backend, size, "none");
}

#endif /* SELFTEST_FORCE_SPEC_CTRL_H */
