// SPDX-License-Identifier: GPL-2.0
/*
 * e9: /sys/kernel/debug/e9, every byte written to it goes out through
 * Bochs' port 0xE9 ("port_e9_hack": to Bochs' standard output). The pool
 * suite carries QEMU's migration stream out of the emulated host this way
 * (scripts/guest/e9out.c frames it). A module because the test kernel has
 * neither ioperm(2) (CONFIG_X86_IOPL_IOPERM) nor /dev/port, and a serial
 * port would pace the bytes at 115200 baud. Refuses to load when the port
 * does not answer 0xE9 (the hack off, or not Bochs), so that nothing is
 * lost silently.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/uaccess.h>

#define E9_PORT 0xe9

static struct dentry *e9_file;

static ssize_t e9_write(struct file *file, const char __user *buf,
			size_t len, loff_t *ppos)
{
	u8 chunk[256];
	size_t done = 0;

	while (done < len) {
		size_t n = min(len - done, sizeof(chunk));

		if (copy_from_user(chunk, buf + done, n))
			return done ? done : -EFAULT;
		outsb(E9_PORT, chunk, n);
		done += n;
		cond_resched();
	}
	*ppos += done;
	return done;
}

static const struct file_operations e9_fops = {
	.owner = THIS_MODULE,
	.write = e9_write,
};

static int __init e9_init(void)
{
	if (inb(E9_PORT) != E9_PORT) {
		pr_err("e9: port 0xe9 does not answer (Bochs' port_e9_hack off?)\n");
		return -ENODEV;
	}
	e9_file = debugfs_create_file("e9", 0200, NULL, NULL, &e9_fops);
	return 0;
}

static void __exit e9_exit(void)
{
	debugfs_remove(e9_file);
}

module_init(e9_init);
module_exit(e9_exit);
MODULE_DESCRIPTION("Bytes out through Bochs' port 0xE9 (test harness)");
MODULE_LICENSE("GPL");
