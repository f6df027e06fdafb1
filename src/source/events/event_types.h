/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * The few kernel types listen_events.bpf.c reads, instead of a generated vmlinux.h.
 *
 * Structs marked CORE are read through CO-RE relocations: their offsets are taken from the
 * running kernel's BTF when the program is loaded, so the layouts below need not match any
 * kernel. `struct bpf_sock` is the uapi context of cgroup-sock programs: a fixed ABI.
 */
#ifndef LSPORTS_EVENT_TYPES_H
#define LSPORTS_EVENT_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define CORE __attribute__((preserve_access_index))
#define SEC(name) __attribute__((section(name), used))

struct ns_common {
	unsigned int inum;
} CORE;

struct net {
	struct ns_common ns;
} CORE;

struct in6_addr {
	__u8 s6_addr[16];
};

struct sock_common {
	__u32 skc_rcv_saddr;
	__u16 skc_num;
	unsigned short skc_family;
	/* Bitfields: read with CO-RE field info (see ipv6only_of), never by plain access. */
	unsigned char skc_reuse:4;
	unsigned char skc_reuseport:1;
	unsigned char skc_ipv6only:1;
	int skc_bound_dev_if;
	struct {
		struct net *net;
	} skc_net;
	struct in6_addr skc_v6_rcv_saddr;
} CORE;

struct inode {
	unsigned long i_ino;
} CORE;

struct file {
	struct inode *f_inode;
} CORE;

struct socket {
	struct file *file;
} CORE;

struct sock {
	struct sock_common __sk_common;
	struct socket *sk_socket;
	__u16 sk_protocol;
} CORE;

/* include/uapi/linux/bpf.h: what a cgroup-sock program is handed. */
struct bpf_sock {
	__u32 bound_dev_if;
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u32 mark;
	__u32 priority;
};

/*
 * What a cgroup sock_addr program (connect4, connect6) is handed, in the kernel: the socket
 * first. Read through CO-RE, as a plain pointer, which the struct sock reads above can use.
 */
struct bpf_sock_addr_kern {
	struct sock *sk;
} CORE;

/* BTF-defined maps, as libbpf and aya read them from the .maps section. */
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum {
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* Helper ids from the kernel's uapi enum bpf_func_id (stable ABI). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)15;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
static __u64 (*bpf_get_socket_cookie)(void *sk) = (void *)46;
static __u64 (*bpf_get_current_cgroup_id)(void) = (void *)80;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;
static void (*bpf_ringbuf_discard)(void *data, __u64 flags) = (void *)133;

#endif
