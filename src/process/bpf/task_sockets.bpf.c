/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * task_sockets: for every socket file descriptor of every process, emit one record
 * { u32 pid; u32 fd; u64 inode; u64 start; u32 netns; u32 extra; } -- the facts lsports'
 * /proc/PID/fd walk reads with one readlinkat per descriptor, gathered by the kernel in a single
 * pass, plus the process's start time (to confirm later that a pid is still that process) and
 * the socket's network namespace. The first record of each process is followed by the process's
 * cgroup v2 id (u64: what its labels are read from, without a /proc/PID/cgroup read or a
 * cgroup.procs read per cgroup); the task_file program, which sees one file at a time, follows
 * every record with it.
 *
 * Asked to (emit_sockets, for `--netns all`), the record of a TCP or UDP socket outside the
 * namespace sockets_except_netns is followed by the socket's own `struct socket_record`
 * (src/source/bpf/socket_record.h: what sock_diag would say of it), and `extra` is its size:
 * the walk then reads every namespace's sockets in its one pass, where sock_diag would need a
 * pass over the host-wide tables per namespace.
 *
 * Two programs give the same records; lsports loads one:
 * - task_fd_walk (iter/task, and bpf_loop: Linux 5.17 and later) visits each process once and
 *   walks its descriptor table itself, under the RCU read lock the iterator holds, taking no
 *   reference on any file;
 * - task_sockets (iter/task_file, Linux 5.8 and later), the fallback, is handed every file by
 *   the kernel, which takes and drops a reference on each.
 *
 * task_fd_walk is shaped for the kernel's verifier as much as for the walk: the walk cannot
 * begin before the verifier has checked every path of the program, and with `--netns all`
 * that check sits right before the walk on the critical path. So the work done per descriptor
 * is checked once, not once per place it is reached: the FDS_PER_STEP slots of a step are an
 * inner bpf_loop (visit_slot, a callback the verifier checks once, to a fixed point) rather
 * than a loop the verifier walks slot by slot with every branch of the body, and everything
 * done with one file up to what to write is one global function (examine_file), checked once
 * for all its calls. And no pointer is loaded straight from a trusted one but ctx->meta->seq
 * (bpf_seq_write needs it trusted): every such load has the verifier look the struct's
 * `__safe_trusted`/`__safe_rcu` names up in the kernel's BTF, a linear scan of every type
 * (126,622 on 6.18), which was half of what was left; task->thread_pid, task->files and the
 * table come through bpf_probe_read_kernel instead, three calls more per process.
 *
 * Measured on the shared 2-core development machine, Linux 6.18, loading task_fd_walk alone
 * (libbpf) and timing the BPF_PROG_LOAD system call's CPU time, medians of 15 loads
 * interleaved with the previous program: 9.4 ms before, 1.1 ms now with emit_sockets 0 (the
 * verifier processed 12,302 instructions, now 1,135), 9.7 against 1.5 ms with emit_sockets 1
 * (12,873 and 1,681). In lsports (LSPORTS_TIMING=1, "bpf: object loaded" to "bpf: program
 * verified", bench namespaces world, 10 runs interleaved, a busy machine): 34 against 2.0 ms
 * with `--netns all`, 15 against 1.1 ms without. The walk costs a little more per open
 * descriptor, a call of visit_slot: one reader's pass, 100 passes alternating with the previous
 * program's in one process, takes 7.01 against 6.66 ms of CPU in the large bench world
 * (emit_sockets 0: 1,016 processes, 100,000 idle descriptors, 30,000 sockets) and 30.7
 * against 30.2 ms in the namespaces world with emit_sockets 1: a third to half a
 * millisecond, shared by the readers, for 8 ms saved before the walk can start.
 *
 * Rebuild with bpf/build.sh; the object next to this file is what lsports embeds.
 */
#include "kernel_types.h"
#include "../../source/bpf/socket_record.h"

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

/* Set by the loader before loading (read-only: the verifier prunes the unused path). */
/* Non-zero: follow each TCP/UDP socket's record with its socket_record. */
const volatile __u32 emit_sockets = 0;
/* The namespace whose sockets get no socket_record (the reader's own, which it dumps). */
const volatile __u32 sockets_except_netns = 0;

struct record {
	__u32 pid;
	__u32 fd;
	__u64 inode;
	/* task->start_boottime of the process: nanoseconds since boot, as /proc's starttime. */
	__u64 start;
	/* Inode of the socket's network namespace; 0 when it could not be read. */
	__u32 netns;
	/*
	 * Bytes following this record: CGROUP_BYTES (the process's cgroup id) or none, then
	 * sizeof(struct socket_record) or none.
	 */
	__u32 extra;
};

/*
 * The process's cgroup v2 id (its cgroup's kernfs node id, what the cgroup directory's inode
 * number and INET_DIAG_CGROUP_ID say; 0 when it could not be read), once per process: carried
 * in every record it would cost 8 bytes a socket, and a process's records must fit in one read.
 */
#define CGROUP_BYTES 8

/*
 * Bytes of a file read at once, the members the walk reads taken out of the copy (FROM_COPY):
 * f_op, private_data and f_inode lie in the first 48 on recent kernels (6.18: 8, 24 and 32);
 * where one lies beyond, it is read on its own. No more: the walk's stack is tight (see
 * record_with_socket).
 */
#define FILE_COPY 48

/* A file's first FILE_COPY bytes. */
struct file_head {
	char bytes[FILE_COPY];
} __attribute__((aligned(8)));

/*
 * A record followed by its socket's own record. Until fill reads the socket, `socket`'s bytes
 * hold the file's first ones (`head`) instead: the frames of task_fd_walk, visit_fds,
 * visit_slot and examine_file share 512 bytes of stack. Recent kernels count both the
 * callbacks' frames and the global function's in; kernels before 6.8 round each frame up to
 * 32 bytes. As compiled: 160 + 0 + 120 + 176 bytes, 512 rounded that way.
 */
struct record_with_socket {
	struct record record;
	union {
		struct socket_record socket;
		struct file_head head;
	};
};

/*
 * task_fd_walk's split between readers: several iterators read at once (one per core), each
 * visiting every process in ascending pid order, and the first to reach a process walks it.
 * claims[0] is the highest pid claimed so far in this pass, claims[1] the pass's number
 * (lsports sets both before each pass). A reader claims pid P by raising claims[0] from below
 * P to P; finding it at P or above, it skips P: every reader visits pids in the same order, so
 * whoever raised it past P had reached P first and either claimed it or found it claimed. One
 * reader alone claims every process.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} claims SEC(".maps");

/*
 * The last pid each reader (its seq_file) claimed, as pass << 32 | pid. A process whose records
 * do not fit in what is left of a read is shown again at the next read, after other readers
 * may have claimed past it: this is how its reader knows it is still its own.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} claimed_last SEC(".maps");

/* Retries of a claim lost to another reader (each loss means it moved on): then walk anyway. */
#define CLAIM_TRIES 8

/*
 * Descriptors per bpf_loop step: one byte of the open bitmap, their slots in one read. Most
 * tables are partly empty (they grow by doubling), so a step whose bits are all clear costs no
 * read of its slots, and a full one costs one read, not eight: each helper call is what the
 * walk spends most on.
 */
#define FDS_PER_STEP 8

/* Bytes of a struct fdtable read at once: max_fds, fd and open_fds lie in its first 32. */
#define FDT_COPY 32

/*
 * One process's table as task_fd_walk's bpf_loop callbacks walk it. It lives in
 * task_fd_walk's frame, the first of the four that share the stack (see record_with_socket):
 * hence the union.
 */
struct walk {
	struct seq_file *seq;
	/* Address of fdt->fd[0]: read FDS_PER_STEP slots at a time with bpf_probe_read_kernel. */
	__u64 fds;
	/* Address of fdt->open_fds, and the 64 bits of it that hold the current step's. */
	__u64 open_fds;
	__u64 open_word;
	__u64 start;
	__u64 cgroup;
	__u32 pid;
	/* Whether a record of this process went out, with the cgroup id after it. */
	__u32 cgroup_sent;
	/* The current step's first descriptor. */
	__u32 first;
	/* Descriptors in the table (fdt->max_fds). */
	__u32 max_fds;
	union {
		/* The current step's slots, read at once. */
		__u64 files[FDS_PER_STEP];
		/* Before the first step: the way to the table, and its first bytes. */
		struct {
			struct files_struct *files;
			struct fdtable *fdt;
			char table[FDT_COPY];
		} find;
	};
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

/*
 * The pid of `task` in the reader's namespace, or 0 when the reader cannot see it. The pid is
 * read with bpf_probe_read_kernel, not loaded from `task` (see the top of this file).
 */
static __u32 reader_pid(struct task_struct *task)
{
	struct pid *pid = 0;
	unsigned int pid_level = 0;
	struct upid upid = {};
	__u32 level = reader_level();

	if (level == 0)
		return task->tgid;
	bpf_probe_read_kernel(&pid, sizeof(pid), &task->thread_pid);
	if (!pid)
		return 0;
	bpf_probe_read_kernel(&pid_level, sizeof(pid_level), &pid->level);
	if (pid_level < level)
		return 0;
	if (bpf_probe_read_kernel(&upid, sizeof(upid), &pid->numbers[level]))
		return 0;
	return upid.nr;
}

/*
 * Whether `file`, whose first bytes are `head`, is a socket: an inode of the socket filesystem.
 * A path opened with O_PATH on a socket in another filesystem has the socket mode too, but is
 * not one. Every field is read with bpf_probe_read_kernel, so the same code serves a file the
 * kernel handed over and one read out of a descriptor table.
 */
static __always_inline int is_socket(struct file *file, const struct file_head *head)
{
	const struct file_operations *f_op = 0;
	struct inode *inode = 0;
	struct super_block *sb = 0;
	unsigned short mode = 0;
	unsigned long magic = 0;

	FROM_COPY(f_op, head->bytes, file, f_op);
	if (!f_op)
		return 0;
	if (socket_fops)
		return f_op == socket_fops;
	FROM_COPY(inode, head->bytes, file, f_inode);
	if (!inode)
		return 0;
	bpf_probe_read_kernel(&mode, sizeof(mode), &inode->i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	bpf_probe_read_kernel(&sb, sizeof(sb), &inode->i_sb);
	if (!sb)
		return 0;
	bpf_probe_read_kernel(&magic, sizeof(magic), &sb->s_magic);
	if (magic != SOCKFS_MAGIC)
		return 0;
	socket_fops = f_op;
	return 1;
}

/* The sock behind socket file `file`, whose first bytes are `head`, or 0. */
static __always_inline struct sock *sock_of(struct file *file, const struct file_head *head)
{
	struct socket *socket = 0;
	struct sock *sk = 0;

	FROM_COPY(socket, head->bytes, file, private_data);
	if (!socket)
		return 0;
	bpf_probe_read_kernel(&sk, sizeof(sk), &socket->sk);
	return sk;
}

/* The inode of the network namespace of `sk`, or 0. */
static __u32 netns_of(struct sock *sk)
{
	struct net *net = 0;
	__u32 inum = 0;

	if (!sk)
		return 0;
	bpf_probe_read_kernel(&net, sizeof(net), &sk->__sk_common.skc_net.net);
	if (!net)
		return 0;
	bpf_probe_read_kernel(&inum, sizeof(inum), &net->ns.inum);
	return inum;
}

/*
 * The cgroup v2 id of `task`: task->cgroups->dfl_cgrp->kn->id, as the kernel's
 * task_dfl_cgroup() finds it; 0 where the kernel has no cgroups or a pointer is null. Read with
 * bpf_probe_read_kernel (the css_set is RCU-protected, and the iterator holds the RCU read
 * lock): a task moving cgroups meanwhile gives the old cgroup or the new one.
 */
static __u64 cgroup_of(struct task_struct *task)
{
	struct css_set *cset = 0;
	struct cgroup *cgroup = 0;
	struct kernfs_node *kn = 0;
	__u64 id = 0;

	if (!__builtin_preserve_field_info(task->cgroups, FIELD_EXISTS))
		return 0;
	bpf_probe_read_kernel(&cset, sizeof(cset), &task->cgroups);
	if (!cset)
		return 0;
	bpf_probe_read_kernel(&cgroup, sizeof(cgroup), &cset->dfl_cgrp);
	if (!cgroup)
		return 0;
	bpf_probe_read_kernel(&kn, sizeof(kn), &cgroup->kn);
	if (!kn)
		return 0;
	bpf_probe_read_kernel(&id, sizeof(id), &kn->id);
	return id;
}

/* What fill filled in. */
#define FILLED_NOTHING 0
#define FILLED_RECORD 1
#define FILLED_SOCKET 2

/*
 * Fill `out`, whose record's pid, fd and start the caller set and whose `head` holds the first
 * bytes of socket `file`: its record, followed by the socket's own where emit_sockets asks.
 * Returns what to write: FILLED_NOTHING, FILLED_RECORD or FILLED_SOCKET (the record and the
 * socket's). Codes, not sizes: a size known equal to a constant can be passed on by the compiler
 * in place of the constant, and bpf_seq_write's size must be bounded for the verifier.
 */
static __always_inline int fill(struct record_with_socket *out, struct file *file)
{
	struct record *record = &out->record;
	struct inode *inode = 0;
	struct sock *sk;

	FROM_COPY(inode, out->head.bytes, file, f_inode);
	if (!inode)
		return FILLED_NOTHING;
	bpf_probe_read_kernel(&record->inode, sizeof(record->inode), &inode->i_ino);
	sk = sock_of(file, &out->head);
	/* Done with the head: read_socket_with wants the socket's bytes zeroed. */
	__builtin_memset(&out->socket, 0, sizeof(out->socket));
	record->netns = netns_of(sk);
	/* The namespace and inode just read are the socket's: read_socket need not read them. */
	if (emit_sockets && sk && record->netns != sockets_except_netns &&
	    read_socket_with((struct sock_common *)sk, &out->socket, record->netns, record->inode) == 0) {
		record->extra = sizeof(out->socket);
		return FILLED_SOCKET;
	}
	return FILLED_RECORD;
}

/*
 * The file at address `file`, as a global function: read its first bytes into `out`, and fill
 * `out` as fill does where it is a socket (FILLED_NOTHING where it is not). The verifier
 * checks a global function once, where it checks a static one again at every call and
 * callback pass (see the top of this file). A global function may take pointers from Linux
 * 5.12, and only the fd walk (Linux 5.17) calls this one.
 */
__attribute__((noinline)) int examine_file(struct record_with_socket *out, __u64 file)
{
	if (!out)
		return FILLED_NOTHING;
	if (bpf_probe_read_kernel(&out->head, sizeof(out->head), (void *)file) ||
	    !is_socket((struct file *)file, &out->head))
		return FILLED_NOTHING;
	return fill(out, (struct file *)file);
}

/*
 * Write what fill or examine_file filled in `out` (`filled`), with the cgroup id `*cgroup`
 * between the record and its socket's where `cgroup` is given.
 */
static __always_inline void write(struct seq_file *seq, struct record_with_socket *out, int filled,
				  __u64 *cgroup)
{
	if (filled == FILLED_NOTHING)
		return;
	if (cgroup) {
		out->record.extra += CGROUP_BYTES;
		bpf_seq_write(seq, &out->record, sizeof(out->record));
		bpf_seq_write(seq, cgroup, CGROUP_BYTES);
		if (filled == FILLED_SOCKET)
			bpf_seq_write(seq, &out->socket, sizeof(out->socket));
	} else if (filled == FILLED_SOCKET) {
		bpf_seq_write(seq, out, sizeof(*out));
	} else {
		bpf_seq_write(seq, &out->record, sizeof(out->record));
	}
}

/* Thread-group leaders only: a thread with its own fd table is not what /proc/PID/fd shows. */
static int is_leader(struct task_struct *task)
{
	return task->pid == task->tgid;
}

/*
 * Inner bpf_loop callback: descriptor walk->first + i, if open by the bitmap. One call per
 * slot of a step with any open (a few nanoseconds each) buys a body the verifier checks once.
 */
static long visit_slot(__u32 i, struct walk *walk)
{
	struct record_with_socket out = {};
	__u64 file;
	__u64 cgroup;
	int filled;

	if (!((walk->open_word >> (walk->first % 64 + i)) & 1))
		return 0;
	/* The mask shows the verifier the index in bounds. */
	file = walk->files[i & (FDS_PER_STEP - 1)];
	if (!file)
		return 0;
	out.record.pid = walk->pid;
	out.record.fd = walk->first + i;
	out.record.start = walk->start;
	filled = examine_file(&out, file);
	if (filled == FILLED_NOTHING)
		return 0;
	cgroup = walk->cgroup;
	write(walk->seq, &out, filled, walk->cgroup_sent ? 0 : &cgroup);
	walk->cgroup_sent = 1;
	return 0;
}

/*
 * bpf_loop callback: descriptors FDS_PER_STEP * step and the next FDS_PER_STEP - 1 of the
 * walked process, those open by its bitmap, their slots read at once and visited by
 * visit_slot. Returns 1 to stop the loop.
 */
static long visit_fds(__u32 step, struct walk *walk)
{
	__u32 first = step * FDS_PER_STEP;

	if (step % 8 == 0 &&
	    bpf_probe_read_kernel(&walk->open_word, sizeof(walk->open_word),
				  (void *)(walk->open_fds + (__u64)(step / 8) * 8)))
		return 1;
	if (!((walk->open_word >> ((step % 8) * FDS_PER_STEP)) & 0xff))
		return 0;
	if (bpf_probe_read_kernel(walk->files, sizeof(walk->files), (void *)(walk->fds + (__u64)first * 8)))
		return 1;
	walk->first = first;
	bpf_loop(FDS_PER_STEP, visit_slot, walk, 0);
	return 0;
}

/*
 * Whether the reader `seq` walks process `pid` (see `claims`). After CLAIM_TRIES losses it
 * does: two readers walking one process give the same records twice, which lsports merges.
 * Not inlined: its frame stays out of task_fd_walk's, which the callbacks' frames add to.
 */
static __attribute__((noinline)) int claim(struct seq_file *seq, __u32 pid)
{
	__u32 highest = 0, pass = 1;
	__u64 reader = (__u64)seq;
	__u64 *claimed = bpf_map_lookup_elem(&claims, &highest);
	__u64 *pass_number = bpf_map_lookup_elem(&claims, &pass);
	__u64 *last = bpf_map_lookup_elem(&claimed_last, &reader);
	__u64 mine, seen;

	if (!claimed || !pass_number)
		return 1;
	mine = (*pass_number << 32) | pid;
	if (last && *last == mine)
		return 1;
	seen = *claimed;
	for (int i = 0; i < CLAIM_TRIES; i++) {
		__u64 was;

		if (seen >= pid)
			return 0;
		was = __sync_val_compare_and_swap(claimed, seen, (__u64)pid);
		if (was == seen)
			break;
		seen = was;
	}
	bpf_map_update_elem(&claimed_last, &reader, &mine, 0);
	return 1;
}

SEC("iter/task")
int task_fd_walk(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct walk walk = {};

	if (!task || !is_leader(task))
		return 0;
	walk.seq = ctx->meta->seq;
	walk.pid = reader_pid(task);
	if (!walk.pid || !claim(walk.seq, walk.pid))
		return 0;
	/*
	 * The iterator runs under the RCU read lock, which keeps the table and the files in it
	 * from being freed; a table being resized or a descriptor being closed meanwhile gives the
	 * old or the new one, as a /proc read would. lsports confirms what it keeps. Read with
	 * bpf_probe_read_kernel, not loaded from `task` (see the top of this file).
	 */
	bpf_probe_read_kernel(&walk.find.files, sizeof(walk.find.files), &task->files);
	if (!walk.find.files)
		return 0;
	bpf_probe_read_kernel(&walk.find.fdt, sizeof(walk.find.fdt), &walk.find.files->fdt);
	if (!walk.find.fdt ||
	    bpf_probe_read_kernel(walk.find.table, sizeof(walk.find.table), walk.find.fdt))
		return 0;
	FROM_COPY(walk.max_fds, walk.find.table, walk.find.fdt, max_fds);
	FROM_COPY(walk.fds, walk.find.table, walk.find.fdt, fd);
	FROM_COPY(walk.open_fds, walk.find.table, walk.find.fdt, open_fds);
	walk.start = task->start_boottime;
	walk.cgroup = cgroup_of(task);
	bpf_loop(walk.max_fds / FDS_PER_STEP, visit_fds, &walk, 0);
	return 0;
}

SEC("iter/task_file")
int task_sockets(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct record_with_socket out = {};
	__u64 cgroup;

	if (!task || !file || !is_leader(task))
		return 0;
	if (bpf_probe_read_kernel(&out.head, sizeof(out.head), file) || !is_socket(file, &out.head))
		return 0;
	out.record.pid = reader_pid(task);
	if (!out.record.pid)
		return 0;
	out.record.fd = ctx->fd;
	out.record.start = task->start_boottime;
	cgroup = cgroup_of(task);
	/* The static fill: this program serves kernels older than global functions' pointers. */
	write(ctx->meta->seq, &out, fill(&out, file), &cgroup);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
