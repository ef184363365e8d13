// SPDX-License-Identifier: GPL-2.0
/*
 * A task of the real guest (the test kernel under QEMU, inside Bochs) whose
 * kernel writes IA32_SPEC_CTRL on its behalf: "spec-task ssbd" asks for
 * Speculative Store Bypass Disable with prctl(), as a sandboxed process
 * would; "spec-task plain" does not. Both pin themselves to CPU 0 and yield
 * to each other, so that the guest kernel switches SSBD on and off in
 * IA32_SPEC_CTRL at every context switch between them.
 *
 * Every PERIOD_S seconds each task reads IA32_SPEC_CTRL through
 * /dev/cpu/0/msr, i.e. what the guest's RDMSR returns in its own context,
 * and prints it: "L2-MSR task=ssbd 0x405". The host compares these with
 * what KVM reports as the guest's view: forced bits must never show here.
 * "spec-task rdmsr ADDR" prints one MSR, for the guest's log.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MSR_IA32_SPEC_CTRL	0x48
#define PERIOD_S		1

static int read_spec_ctrl(int fd, uint64_t *v)
{
	return pread(fd, v, sizeof(*v), MSR_IA32_SPEC_CTRL) == sizeof(*v) ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "";
	int ssbd = !strcmp(name, "ssbd");
	struct timespec now, up, last = { 0 };
	unsigned long ticks = 0;
	cpu_set_t cpus;
	uint64_t v;
	int fd;

	if (!strcmp(name, "rdmsr") && argc == 3) {
		/* One RDMSR, e.g. of IA32_ARCH_CAPABILITIES for the log. */
		fd = open("/dev/cpu/0/msr", O_RDONLY);
		if (fd < 0 || pread(fd, &v, sizeof(v), strtoul(argv[2], NULL, 0)) != sizeof(v)) {
			printf("unreadable\n");
			return 1;
		}
		printf("0x%llx\n", (unsigned long long)v);
		return 0;
	}
	if (!ssbd && strcmp(name, "plain")) {
		fprintf(stderr, "usage: spec-task ssbd|plain|rdmsr ADDR\n");
		return 2;
	}
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus)) {
		perror("L2-ERROR sched_setaffinity");
		return 1;
	}
	if (ssbd && prctl(PR_SET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS,
			  PR_SPEC_DISABLE, 0, 0)) {
		perror("L2-ERROR prctl(PR_SPEC_STORE_BYPASS, PR_SPEC_DISABLE)");
		return 1;
	}
	fd = open("/dev/cpu/0/msr", O_RDONLY);
	if (fd < 0) {
		perror("L2-ERROR /dev/cpu/0/msr");
		return 1;
	}
	for (;;) {
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - last.tv_sec < PERIOD_S)
			continue;
		last = now;
		if (read_spec_ctrl(fd, &v)) {
			perror("L2-ERROR rdmsr IA32_SPEC_CTRL");
			return 1;
		}
		printf("L2-MSR task=%s 0x%llx\n", name, (unsigned long long)v);
		if (!ssbd) {
			/*
			 * The guest's own clock and a counter in its memory:
			 * both carry on across a migration (the pool suite
			 * checks that each hop resumes the same guest).
			 */
			clock_gettime(CLOCK_BOOTTIME, &up);
			printf("L2-TICK n=%lu up=%lld.%02ld\n", ++ticks,
			       (long long)up.tv_sec, up.tv_nsec / 10000000);
		}
		fflush(stdout);
	}
}
