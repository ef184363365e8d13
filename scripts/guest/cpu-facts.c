// SPDX-License-Identifier: GPL-2.0
/*
 * cpu-facts: what the CPU this kernel booted on reports of its speculation
 * mitigations, read the way the kernel and KVM read them:
 *
 *   arch_capabilities  IA32_ARCH_CAPABILITIES (MSR 0x10A)
 *   cpuid_7_2_edx      CPUID.(EAX=7,ECX=2):EDX (PSFD, IPRED_CTRL,
 *                      RRSBA_CTRL, DDPD_U, BHI_CTRL, ...)
 *   spec_ctrl          the IA32_SPEC_CTRL (MSR 0x48) bits WRMSR accepts:
 *                      each of the 64 bits written alone on top of the
 *                      current value, an #GP (EIO from the msr driver)
 *                      meaning "not accepted", the old value written back
 *                      after each write that succeeded
 *
 * "cpu-facts NAME" prints that value as 0x%x (lower case); without an
 * argument it prints "NAME VALUE" for all three. Runs on CPU 0, through
 * /dev/cpu/0/msr (CONFIG_X86_MSR); spec_ctrl needs msr.allow_writes=on on
 * the kernel command line, or the kernel warns and taints on the writes.
 * scripts/guest/lib.sh (cpu_facts) compares against
 * scripts/guest/cpu-facts.list.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int msr_fd = -1;

static void die(const char *what)
{
	fprintf(stderr, "cpu-facts: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int rdmsr(uint32_t msr, uint64_t *val)
{
	return pread(msr_fd, val, 8, msr) == 8 ? 0 : -1;
}

static int wrmsr(uint32_t msr, uint64_t val)
{
	return pwrite(msr_fd, &val, 8, msr) == 8 ? 0 : -1;
}

static uint64_t arch_capabilities(void)
{
	uint64_t val;

	if (rdmsr(0x10a, &val))
		die("RDMSR IA32_ARCH_CAPABILITIES (0x10a)");
	return val;
}

static uint64_t cpuid_7_2_edx(void)
{
	unsigned int eax, ebx, ecx, edx;

	/* Raw, as software sees it: a sub-leaf above CPUID.(7,0):EAX reads 0. */
	__cpuid_count(7, 2, eax, ebx, ecx, edx);
	return edx;
}

static uint64_t spec_ctrl(void)
{
	uint64_t old, now, accepted = 0;
	int bit;

	if (rdmsr(0x48, &old))
		die("RDMSR IA32_SPEC_CTRL (0x48)");
	for (bit = 0; bit < 64; bit++) {
		if (wrmsr(0x48, old | (1ULL << bit))) {
			if (errno != EIO)
				die("WRMSR IA32_SPEC_CTRL (0x48)");
			continue;
		}
		accepted |= 1ULL << bit;
		if (wrmsr(0x48, old))
			die("WRMSR IA32_SPEC_CTRL (0x48) back to its old value");
	}
	if (rdmsr(0x48, &now))
		die("RDMSR IA32_SPEC_CTRL (0x48)");
	if (now != old) {
		fprintf(stderr, "cpu-facts: IA32_SPEC_CTRL 0x%llx, was 0x%llx\n",
			(unsigned long long)now, (unsigned long long)old);
		exit(2);
	}
	return accepted;
}

static const struct {
	const char *name;
	uint64_t (*read)(void);
} facts[] = {
	{ "arch_capabilities", arch_capabilities },
	{ "cpuid_7_2_edx", cpuid_7_2_edx },
	{ "spec_ctrl", spec_ctrl },
};

int main(int argc, char **argv)
{
	cpu_set_t cpu0;
	size_t i;

	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	if (sched_setaffinity(0, sizeof(cpu0), &cpu0))
		die("sched_setaffinity");
	msr_fd = open("/dev/cpu/0/msr", O_RDWR);
	if (msr_fd < 0)
		die("open /dev/cpu/0/msr");
	for (i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
		if (argc > 1 && strcmp(argv[1], facts[i].name))
			continue;
		if (argc > 1)
			printf("0x%llx\n", (unsigned long long)facts[i].read());
		else
			printf("%s 0x%llx\n", facts[i].name,
			       (unsigned long long)facts[i].read());
		if (argc > 1)
			return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "cpu-facts: no fact '%s'\n", argv[1]);
		return 2;
	}
	return 0;
}
