/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * task_sockets: for every socket file descriptor of every process, emit one record
 * { u32 pid; u32 fd; u64 inode; } -- the same facts lsports' /proc/PID/fd walk reads with one
 * readlinkat per descriptor, gathered by the kernel in a single pass.
 *
 * Rebuild with bpf/build.sh; the object next to this file is what lsports embeds.
 */
#include "kernel_types.h"

#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define SOCKFS_MAGIC 0x534F434B

/*
 * The nesting level of the reader's pid namespace, plus one; 0 until first needed. Pids are
 * emitted as that namespace numbers them, which is what the reader's /proc shows (task->tgid
 * is the number in the initial namespace). The reader is the task running this program: the
 * iterator runs in its read(2), and visits only the tasks its pid namespace can see.
 */
__u32 reader_level_plus_one = 0;

/*
 * The file operations every socket file shares (the kernel's socket_file_ops), learned from
 * the first socket seen. Comparing a file's f_op with it reads only the file, which the
 * iterator has just touched, instead of its inode: most descriptors are not sockets.
 */
const struct file_operations *socket_fops = 0;

struct record {
	__u32 pid;
	__u32 fd;
	__u64 inode;
};

/* The nesting level of the pid namespace of the task reading the iterator. */
static __u32 reader_level(void)
{
	struct task_struct *reader = (struct task_struct *)bpf_get_current_task();
	struct pid *pid = 0;
	unsigned int level = 0;

	if (!reader_level_plus_one) {
		bpf_probe_read_kernel(&pid, sizeof(pid), &reader->thread_pid);
		if (pid)
			bpf_probe_read_kernel(&level, sizeof(level), &pid->level);
		reader_level_plus_one = level + 1;
	}
	return reader_level_plus_one - 1;
}

/* The pid of `task` in the reader's namespace, or 0 when the reader cannot see it. */
static __u32 reader_pid(struct task_struct *task)
{
	struct pid *pid = task->thread_pid;
	struct upid upid = {};
	__u32 level = reader_level();

	if (level == 0)
		return task->tgid;
	if (!pid || pid->level < level)
		return 0;
	if (bpf_probe_read_kernel(&upid, sizeof(upid), &pid->numbers[level]))
		return 0;
	return upid.nr;
}

/*
 * Whether `file` is a socket: an inode of the socket filesystem. A path opened with O_PATH on a
 * socket in another filesystem has the socket mode too, but is not one.
 */
static int is_socket(struct file *file)
{
	struct inode *inode;

	if (socket_fops)
		return file->f_op == socket_fops;
	inode = file->f_inode;
	if ((inode->i_mode & S_IFMT) != S_IFSOCK || inode->i_sb->s_magic != SOCKFS_MAGIC)
		return 0;
	socket_fops = file->f_op;
	return 1;
}

SEC("iter/task_file")
int task_sockets(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct record record = {};

	if (!task || !file)
		return 0;
	/* Threads with their own fd table are not what /proc/PID/fd shows: leaders only. */
	if (task->pid != task->tgid)
		return 0;
	if (!is_socket(file))
		return 0;
	record.pid = reader_pid(task);
	if (!record.pid)
		return 0;
	record.fd = ctx->fd;
	record.inode = file->f_inode->i_ino;
	bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
