// SPDX-License-Identifier: GPL-2.0
/*
 * e9out FILE: copy FILE out of the emulated machine through Bochs' port 0xE9
 * (the e9 module's /sys/kernel/debug/e9: scripts/guest/e9/e9.c), framed so
 * that the harness finds it among Bochs' own messages on its stdout:
 *
 *   "\nKFSC-E9-BEGIN <length> <name>\n" <length raw bytes> "\nKFSC-E9-END\n"
 *
 * The pool suite carries QEMU's migration stream from one emulated host to
 * the next this way (scripts/pool-run.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define E9_FILE "/sys/kernel/debug/e9"

static int out_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	for (; n; n -= w, c += w) {
		w = write(fd, c, n);
		if (w <= 0)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	char head[256];
	const char *name;
	struct stat st;
	long long left;
	int in, out;
	ssize_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: e9out FILE\n");
		return 2;
	}
	in = open(argv[1], O_RDONLY);
	if (in < 0 || fstat(in, &st)) {
		fprintf(stderr, "e9out: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	out = open(E9_FILE, O_WRONLY);
	if (out < 0) {
		fprintf(stderr, "e9out: %s: %s (is the e9 module loaded?)\n", E9_FILE,
			strerror(errno));
		return 1;
	}
	name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
	snprintf(head, sizeof(head), "\nKFSC-E9-BEGIN %lld %s\n", (long long)st.st_size, name);
	if (out_all(out, head, strlen(head)))
		goto fail;
	for (left = st.st_size; left > 0; left -= n) {
		n = read(in, buf, sizeof(buf));
		if (n <= 0) {
			fprintf(stderr, "e9out: %s: short read\n", argv[1]);
			return 1;
		}
		if (out_all(out, buf, n))
			goto fail;
	}
	if (out_all(out, "\nKFSC-E9-END\n", 13))
		goto fail;
	return 0;
fail:
	fprintf(stderr, "e9out: writing %s: %s\n", E9_FILE, strerror(errno));
	return 1;
}
