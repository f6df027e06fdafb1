/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * The few kernel types task_sockets.bpf.c reads, instead of a generated vmlinux.h.
 *
 * Only the fields the program touches are declared. `preserve_access_index` makes clang record
 * every access as a CO-RE relocation, so offsets are taken from the running kernel's BTF
 * (/sys/kernel/btf/vmlinux) at load time: the layouts below need not match any kernel.
 */
#ifndef LSPORTS_KERNEL_TYPES_H
#define LSPORTS_KERNEL_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define CORE __attribute__((preserve_access_index))

struct pid_namespace;

/*
 * A pid as one pid namespace sees it. Not relocated: numbers[] is indexed by a run-time level,
 * which CO-RE cannot relocate, so the element layout is taken as it has been since Linux 2.6.24.
 */
struct upid {
	int nr;
	struct pid_namespace *ns;
};

/* numbers[0..=level]: the pid in every namespace from the initial one down to its own. */
struct pid {
	unsigned int level;
	struct upid numbers[1];
} CORE;

struct files_struct;

/* The cgroup v2 id, as sockets' own (socket_record.h's cgroup___rec) is read. */
struct kernfs_node {
	__u64 id;
} CORE;

struct cgroup {
	struct kernfs_node *kn;
} CORE;

/* A task's cgroups, one per hierarchy; dfl_cgrp is its cgroup in the v2 hierarchy. */
struct css_set {
	struct cgroup *dfl_cgrp;
} CORE;

struct task_struct {
	int pid;
	int tgid;
	struct pid *thread_pid;
	__u64 start_boottime;
	struct files_struct *files;
	/* Absent on a kernel built without CONFIG_CGROUPS (checked with FIELD_EXISTS). */
	struct css_set *cgroups;
} CORE;

struct file;

/* The table behind a process's descriptors: fd[0..max_fds), NULL where no file is open. */
struct fdtable {
	unsigned int max_fds;
	struct file **fd;
	/* A bit per descriptor, set when it is open; max_fds is a multiple of 64 (BITS_PER_LONG). */
	unsigned long *open_fds;
} CORE;

struct files_struct {
	struct fdtable *fdt;
} CORE;

struct super_block {
	unsigned long s_magic;
} CORE;

struct inode {
	unsigned short i_mode;
	struct super_block *i_sb;
	unsigned long i_ino;
} CORE;

struct file_operations;

struct file {
	const struct file_operations *f_op;
	struct inode *f_inode;
	void *private_data;
} CORE;

/* A socket file's private_data, and the way to the network namespace it was created in. */
struct ns_common {
	unsigned int inum;
} CORE;

struct net {
	struct ns_common ns;
} CORE;

typedef struct {
	struct net *net;
} CORE possible_net_t;

struct sock_common {
	possible_net_t skc_net;
} CORE;

struct sock {
	struct sock_common __sk_common;
} CORE;

struct socket {
	struct sock *sk;
} CORE;

struct seq_file;

/*
 * The iterator's context is the argument list of the kernel's bpf_iter_task_file(meta, task,
 * fd, file), one 8-byte slot each: a fixed ABI, so these two need no relocation (and every
 * relocated type costs a search through the kernel's BTF at load time).
 */
struct bpf_iter_meta {
	struct seq_file *seq;
};

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
};

/* bpf_iter_task(meta, task), likewise. */
struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
};

/* Helper ids from the kernel's uapi enum bpf_func_id (stable ABI). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) =
	(void *)2;
static __u64 (*bpf_get_current_task)(void) = (void *)35;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static long (*bpf_seq_write)(struct seq_file *m, const void *data, __u32 len) = (void *)127;
/* Linux 5.17 and later: call fn(i, ctx) for i in 0..nr, until it returns 1. */
static long (*bpf_loop)(__u32 nr, void *fn, void *ctx, __u64 flags) = (void *)181;

#define SEC(name) __attribute__((section(name), used))

/* A map declared in BTF, as libbpf's bpf_helpers.h spells it (`SEC(".maps")`). */
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_LRU_HASH 9
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

#endif
