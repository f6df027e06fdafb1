/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * listen_events: one record in a ring buffer each time a listener opens or closes.
 *
 *   tp_btf/inet_sock_set_state  TCP into LISTEN (opened) and out of it (closed)
 *   cgroup/post_bind4, 6        a UDP socket bound (opened)
 *   cgroup/sock_release         a bound UDP socket released (closed)
 *   cgroup/connect4, 6          a bound UDP socket connected: a client, no longer a listener
 *                               (closed)
 *
 * These load on a kernel in lockdown, where kprobes and fentry are refused. The cgroup
 * programs always allow (return 1): they watch, never decide. A record the ring has no room
 * for is counted in `lost`, so userspace can say so and read the tables again.
 *
 * Rebuild with bpf/build.sh; the object next to this file is what lsports embeds.
 */
#include "event_types.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCP_LISTEN 10

#define OPENED 1
#define CLOSED 2

/* The record userspace decodes (src/source/events/record.rs): 88 bytes, no padding holes. */
struct event {
	__u64 cookie;
	__u64 netns;
	__u64 inode;
	__u64 cgroup;
	__u32 pid;
	__u32 uid;
	__u8 addr[16];
	__u16 port;
	__u8 family;
	__u8 protocol;
	__u8 kind;
	/* IPV6_V6ONLY of an AF_INET6 socket (final by then: it cannot change after bind). */
	__u8 v6only;
	__u8 pad[2];
	char comm[16];
	/* The device the socket is bound to (SO_BINDTODEVICE), 0 for none. */
	__u32 bound_dev_if;
	__u8 pad2[4];
};

/*
 * The nsfs inode of the one network namespace watched, or 0 for every namespace: set by the
 * loader, so that a watch of one namespace is not woken, nor its ring filled, by the others.
 */
volatile const __u64 watched_netns = 0;

/* Large enough for a burst of a few thousand records between two reads. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} EVENTS SEC(".maps");

/* Records dropped because the ring was full, per CPU (no atomics needed). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} LOST SEC(".maps");

/* The nsfs inode of the socket's network namespace, 0 when it cannot be read. */
static __attribute__((always_inline)) __u64 netns_of(struct sock *sk)
{
	struct net *net = 0;
	unsigned int inum = 0;

	bpf_probe_read_kernel(&net, sizeof(net), &sk->__sk_common.skc_net.net);
	if (net)
		bpf_probe_read_kernel(&inum, sizeof(inum), &net->ns.inum);
	return inum;
}

/* Whether the socket is in the namespace watched. */
static __attribute__((always_inline)) int watched(struct sock *sk)
{
	return !watched_netns || netns_of(sk) == watched_netns;
}

/* __builtin_preserve_field_info kinds (the kernel's enum bpf_field_info_kind). */
#define FIELD_BYTE_OFFSET 0
#define FIELD_BYTE_SIZE 1
#define FIELD_LSHIFT_U64 4
#define FIELD_RSHIFT_U64 5

/*
 * sk->__sk_common.skc_ipv6only, a one-bit field: its byte offset, size and shifts come from
 * the running kernel's BTF (CO-RE field info, as libbpf's BPF_CORE_READ_BITFIELD_PROBED on a
 * little-endian host reads a bitfield).
 */
static __attribute__((always_inline)) __u8 ipv6only_of(struct sock *sk)
{
	unsigned long long val = 0;

	bpf_probe_read_kernel(&val,
			      __builtin_preserve_field_info(sk->__sk_common.skc_ipv6only,
							    FIELD_BYTE_SIZE),
			      (const void *)sk +
				      __builtin_preserve_field_info(sk->__sk_common.skc_ipv6only,
								    FIELD_BYTE_OFFSET));
	val <<= __builtin_preserve_field_info(sk->__sk_common.skc_ipv6only, FIELD_LSHIFT_U64);
	val >>= __builtin_preserve_field_info(sk->__sk_common.skc_ipv6only, FIELD_RSHIFT_U64);
	return val;
}

/*
 * Fill what the kernel's struct sock tells: address, port, IPV6_V6ONLY, device, namespace and
 * socket inode.
 * Read with bpf_probe_read_kernel so that the same code serves the tracepoint's BTF pointer
 * and a cgroup program's context (which is the struct sock behind the uapi bpf_sock).
 */
static __attribute__((always_inline)) void read_sock(struct event *e, struct sock *sk)
{
	struct socket *socket = 0;
	struct file *file = 0;
	struct inode *inode = 0;
	unsigned long ino = 0;
	unsigned short family = 0;

	bpf_probe_read_kernel(&family, sizeof(family), &sk->__sk_common.skc_family);
	e->family = family;
	bpf_probe_read_kernel(&e->port, sizeof(e->port), &sk->__sk_common.skc_num);
	bpf_probe_read_kernel(&e->bound_dev_if, sizeof(e->bound_dev_if),
			      &sk->__sk_common.skc_bound_dev_if);
	if (family == AF_INET6) {
		bpf_probe_read_kernel(e->addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		e->v6only = ipv6only_of(sk);
	} else
		bpf_probe_read_kernel(e->addr, 4, &sk->__sk_common.skc_rcv_saddr);
	e->netns = netns_of(sk);
	bpf_probe_read_kernel(&socket, sizeof(socket), &sk->sk_socket);
	if (socket)
		bpf_probe_read_kernel(&file, sizeof(file), &socket->file);
	if (file)
		bpf_probe_read_kernel(&inode, sizeof(inode), &file->f_inode);
	if (inode && !bpf_probe_read_kernel(&ino, sizeof(ino), &inode->i_ino))
		e->inode = ino;
}

/* Who is running: the process (thread group) id, its uid, command and cgroup. */
static __attribute__((always_inline)) void read_current(struct event *e)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* A zeroed record in the ring, or 0 (counted as lost) when it is full. */
static __attribute__((always_inline)) struct event *reserve(void)
{
	struct event *e = bpf_ringbuf_reserve(&EVENTS, sizeof(*e), 0);
	__u32 zero = 0;
	__u64 *lost;

	if (!e) {
		lost = bpf_map_lookup_elem(&LOST, &zero);
		if (lost)
			*lost += 1;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	return e;
}

SEC("tp_btf/inet_sock_set_state")
int inet_sock_set_state(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int oldstate = (int)ctx[1];
	int newstate = (int)ctx[2];
	__u16 protocol = 0;
	struct event *e;

	if ((oldstate == TCP_LISTEN) == (newstate == TCP_LISTEN))
		return 0;
	bpf_probe_read_kernel(&protocol, sizeof(protocol), &sk->sk_protocol);
	if (protocol != IPPROTO_TCP || !watched(sk))
		return 0;
	e = reserve();
	if (!e)
		return 0;
	e->kind = newstate == TCP_LISTEN ? OPENED : CLOSED;
	e->protocol = IPPROTO_TCP;
	e->cookie = bpf_get_socket_cookie(sk);
	read_sock(e, sk);
	read_current(e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* One UDP record of the socket `sk` (unless it was never bound), by the current process. */
static __attribute__((always_inline)) void udp_record(struct sock *sk, __u64 cookie, __u8 kind)
{
	struct event *e = reserve();

	if (!e)
		return;
	e->kind = kind;
	e->protocol = IPPROTO_UDP;
	e->cookie = cookie;
	read_sock(e, sk);
	/* Released (or connected) before it was bound: never a listener. */
	if (e->port == 0) {
		bpf_ringbuf_discard(e, 0);
		return;
	}
	read_current(e);
	bpf_ringbuf_submit(e, 0);
}

/*
 * A UDP socket as a cgroup program sees it. Its context is the kernel's struct sock behind
 * the uapi bpf_sock, which does not offer the address to sock_release: everything is read
 * from the struct sock, as the tracepoint does.
 */
static __attribute__((always_inline)) void udp_event(struct bpf_sock *ctx, __u8 kind)
{
	if (ctx->protocol != IPPROTO_UDP || !watched((struct sock *)ctx))
		return;
	udp_record((struct sock *)ctx, bpf_get_socket_cookie(ctx), kind);
}

SEC("cgroup/post_bind4")
int post_bind4(struct bpf_sock *ctx)
{
	udp_event(ctx, OPENED);
	return 1;
}

SEC("cgroup/post_bind6")
int post_bind6(struct bpf_sock *ctx)
{
	udp_event(ctx, OPENED);
	return 1;
}

SEC("cgroup/sock_release")
int sock_release(struct bpf_sock *ctx)
{
	udp_event(ctx, CLOSED);
	return 1;
}

/*
 * A bound UDP socket that connects is a client from then on (ESTABLISHED, which no listing
 * of listeners shows): closed as a listener. The context is the kernel's, whose first field
 * is the socket. The hook runs before the connect: one that fails leaves the
 * socket unconnected, and the reconciling poll finds it again.
 */
static __attribute__((always_inline)) void udp_connect(struct bpf_sock_addr_kern *ctx)
{
	struct sock *sk = 0;
	__u16 protocol = 0;

	bpf_probe_read_kernel(&sk, sizeof(sk), &ctx->sk);
	if (!sk)
		return;
	bpf_probe_read_kernel(&protocol, sizeof(protocol), &sk->sk_protocol);
	if (protocol != IPPROTO_UDP || !watched(sk))
		return;
	udp_record(sk, bpf_get_socket_cookie(ctx), CLOSED);
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr_kern *ctx)
{
	udp_connect(ctx);
	return 1;
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr_kern *ctx)
{
	udp_connect(ctx);
	return 1;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
