/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * sockets: the kernel's tcp and udp iterators (Linux 5.9 and later), emitting one
 * `struct socket_record` (socket_record.h) per socket of the reader's network namespace that
 * the request wants, as a sock_diag dump would describe it.
 *
 * The iterators visit the namespace's hashed sockets: TCP listeners, then every other TCP
 * socket (connected, TIME_WAIT, request sockets), and every bound UDP socket. What the
 * request does not want (states, families, a port range) is dropped here, after the fewest
 * reads, as sock_diag's request has the kernel do; the exact port set is the reader's to
 * apply. The filters are read-only globals set at load time.
 *
 * Rebuild with bpf/build.sh; the object next to this file is what lsports embeds.
 */
#include "socket_record.h"

/*
 * Per protocol, the states wanted, one bit per state as sock_diag reports it (1 << TCP_LISTEN,
 * say), and the raw states (skc_state) that may report as one of them: a TIME_WAIT socket
 * reports its sub-state (TIME_WAIT or FIN_WAIT2), a request socket (NEW_SYN_RECV) SYN_RECV.
 * Then the families wanted (1 << AF_INET, 1 << AF_INET6). Set by the loader.
 */
const volatile __u32 tcp_states = 0xffffffff;
const volatile __u32 tcp_raw_states = 0xffffffff;
const volatile __u32 tcp_families = (1 << AF_INET) | (1 << AF_INET6);
const volatile __u32 udp_states = 0xffffffff;
const volatile __u32 udp_families = (1 << AF_INET) | (1 << AF_INET6);
/* The local ports wanted lie in [port_min, port_max] (the reader applies the exact set). */
const volatile __u32 port_min = 0;
const volatile __u32 port_max = 0xffff;

/* What one program keeps. */
struct wanted {
	__u32 states;
	__u32 raw_states;
	__u32 families;
};

/* The kernel's bpf_iter__tcp and bpf_iter__udp contexts: a fixed ABI, not relocated. */
struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
	__u32 uid __attribute__((aligned(8)));
};

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct sock_common *udp_sk;
	__u32 uid __attribute__((aligned(8)));
	int bucket __attribute__((aligned(8)));
};

/* Whether the request may want the socket, from the three cheapest reads. */
static __always_inline int may_want(struct sock_common *socket, struct wanted wanted)
{
	struct sock_common___rec *skc = (struct sock_common___rec *)socket;
	unsigned short family = 0;
	unsigned char state = 0;
	__u16 port = 0;

	READ_INTO(state, skc, skc_state);
	if (state >= 32 || !(wanted.raw_states & (1u << state)))
		return 0;
	READ_INTO(family, skc, skc_family);
	if (family >= 32 || !(wanted.families & (1u << family)))
		return 0;
	READ_INTO(port, skc, skc_num);
	return port >= port_min && port <= port_max;
}

/* Write the record of `socket` if the request wants it. */
static __always_inline void emit(struct seq_file *seq, struct sock_common *socket,
				 struct wanted wanted)
{
	struct socket_record record = {};

	if (!socket || !may_want(socket, wanted))
		return;
	if (read_socket(socket, &record))
		return;
	if (record.state >= 32 || !(wanted.states & (1u << record.state)))
		return;
	bpf_seq_write(seq, &record, sizeof(record));
}

SEC("iter/tcp")
int tcp_sockets(struct bpf_iter__tcp *ctx)
{
	struct wanted wanted = { tcp_states, tcp_raw_states, tcp_families };

	emit(ctx->meta->seq, ctx->sk_common, wanted);
	return 0;
}

SEC("iter/udp")
int udp_sockets(struct bpf_iter__udp *ctx)
{
	struct wanted wanted = { udp_states, udp_states, udp_families };

	emit(ctx->meta->seq, ctx->udp_sk, wanted);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
