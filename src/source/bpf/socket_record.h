/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * One TCP or UDP socket as sock_diag describes it, read by any BPF program out of the kernel's
 * socket structures: `struct socket_record` and `read_socket()`.
 *
 * The rules are the kernel's own inet_diag ones (net/ipv4/inet_diag.c, tcp_diag.c,
 * udp_diag.c), so that a record says exactly what a sock_diag dump would for the fields
 * lsports shows:
 * - every socket: family, ports and addresses, bound device (inet_diag_msg_common_fill reads
 *   them from sock_common, which full, TIME_WAIT and request sockets share);
 * - a full socket (sk_fullsock): state, uid (sk_uid, a kuid: the uid as the initial user
 *   namespace sees it), inode (sock_i_ino: 0 once the socket has no file), v6only (which
 *   sock_diag sends only in LISTEN and CLOSE: the decoder's rule, the bit is always set), cgroup v2
 *   id (sk_cgrp_data), and the queues: a TCP listener's accept queue and backlog limit, other
 *   TCP sockets' unread bytes (rcv_nxt - copied_seq, at least 0) and unacknowledged bytes
 *   (write_seq - snd_una), UDP's receive memory less the forward deficit and send memory;
 * - a TIME_WAIT socket (inet_timewait_sock): its sub-state (TIME_WAIT or FIN_WAIT2), nothing
 *   else beyond sock_common (queues, uid, inode 0; no v6only, no cgroup);
 * - a request socket (request_sock, state NEW_SYN_RECV): SYN_RECV, likewise.
 *
 * Whether a socket is one sock_diag would list at all (hashed: listening, connected, or UDP
 * bound) is the caller's to decide; the tcp and udp iterators visit only those.
 *
 * Every read goes through bpf_probe_read_kernel, so the same code serves a pointer the kernel
 * handed over (an iterator's context) and one read out of memory (a file's socket). Field
 * offsets are CO-RE relocations against the running kernel's BTF; the `___rec` types below
 * are local views of kernel structs (the suffix is a CO-RE "flavor", ignored when matching
 * names), declaring only the members read, so this header can sit beside kernel_types.h's
 * own declarations of the same structs.
 *
 * Users: src/source/bpf/sockets.bpf.c (the tcp and udp iterators). The Rust decoder is
 * src/model/socket_record.rs, which must change with `struct socket_record`.
 */
#ifndef LSPORTS_SOCKET_RECORD_H
#define LSPORTS_SOCKET_RECORD_H

#include "../../process/bpf/kernel_types.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_STREAM 1
#define SOCK_DGRAM 2

/* The kernel's TCP states (include/net/tcp_states.h), for UDP too. */
#define TCP_SYN_RECV 3
#define TCP_TIME_WAIT 6
#define TCP_LISTEN 10
#define TCP_NEW_SYN_RECV 12

/* socket_record.flags */
/* A full socket: `inode`, `uid`, queues, `cgroup_id` and RECORD_V6ONLY are its own. */
#define RECORD_FULL 1
/* IPV6_V6ONLY is set (AF_INET6 full sockets only, as sock_diag's INET_DIAG_SKV6ONLY). */
#define RECORD_V6ONLY 2

/*
 * One socket, 80 bytes, every field naturally aligned and no hole (the Rust decoder reads it
 * by offset, native byte order except where said).
 */
struct socket_record {
	/* 0: socket inode (sock_i_ino); 0 for TIME_WAIT and request sockets, and for a socket
	 * whose file is closed. */
	__u64 inode;
	/* 8: cgroup v2 id of the cgroup the socket was created in; 0 when not a full socket or
	 * unknown. */
	__u64 cgroup_id;
	/* 16: local address, network byte order; an IPv4 one in the first 4 bytes, rest 0. */
	__u8 local_addr[16];
	/* 32: remote address, likewise; all 0 when not connected. */
	__u8 remote_addr[16];
	/* 48: inode of the socket's network namespace (net->ns.inum); 0 if unreadable. */
	__u32 netns;
	/* 52: owner uid (sk_uid) as the initial user namespace sees it; 0 when not full. */
	__u32 uid;
	/* 56: sock_diag's idiag_rqueue (see the top of this file). */
	__u32 recv_q;
	/* 60: sock_diag's idiag_wqueue. */
	__u32 send_q;
	/* 64: index of the device the socket is bound to (skc_bound_dev_if); 0 for none. */
	__u32 bound_dev_if;
	/* 68: local port, host byte order. */
	__u16 local_port;
	/* 70: remote port, host byte order; 0 when not connected. */
	__u16 remote_port;
	/* 72: AF_INET or AF_INET6. */
	__u8 family;
	/* 73: IPPROTO_TCP or IPPROTO_UDP. */
	__u8 protocol;
	/* 74: state as sock_diag reports it (TCP_* numbering; TIME_WAIT's sub-state, SYN_RECV
	 * for a request socket). */
	__u8 state;
	/* 75: RECORD_FULL | RECORD_V6ONLY. */
	__u8 flags;
	/* 76: always 0. */
	__u32 reserved;
};

/* The layout src/model/socket_record.rs decodes: a change here must change it. */
_Static_assert(sizeof(struct socket_record) == 80, "socket_record is 80 bytes, no padding");
_Static_assert(__builtin_offsetof(struct socket_record, inode) == 0, "inode");
_Static_assert(__builtin_offsetof(struct socket_record, cgroup_id) == 8, "cgroup_id");
_Static_assert(__builtin_offsetof(struct socket_record, local_addr) == 16, "local_addr");
_Static_assert(__builtin_offsetof(struct socket_record, remote_addr) == 32, "remote_addr");
_Static_assert(__builtin_offsetof(struct socket_record, netns) == 48, "netns");
_Static_assert(__builtin_offsetof(struct socket_record, uid) == 52, "uid");
_Static_assert(__builtin_offsetof(struct socket_record, recv_q) == 56, "recv_q");
_Static_assert(__builtin_offsetof(struct socket_record, send_q) == 60, "send_q");
_Static_assert(__builtin_offsetof(struct socket_record, bound_dev_if) == 64, "bound_dev_if");
_Static_assert(__builtin_offsetof(struct socket_record, local_port) == 68, "local_port");
_Static_assert(__builtin_offsetof(struct socket_record, remote_port) == 70, "remote_port");
_Static_assert(__builtin_offsetof(struct socket_record, family) == 72, "family");
_Static_assert(__builtin_offsetof(struct socket_record, protocol) == 73, "protocol");
_Static_assert(__builtin_offsetof(struct socket_record, state) == 74, "state");
_Static_assert(__builtin_offsetof(struct socket_record, flags) == 75, "flags");
_Static_assert(__builtin_offsetof(struct socket_record, reserved) == 76, "reserved");

/* The kernel structs read, as local CO-RE views (see the top of this file). */

struct in6_addr___rec {
	__u8 s6_addr[16];
};

struct ns_common___rec {
	unsigned int inum;
} CORE;

struct net___rec {
	struct ns_common___rec ns;
} CORE;

/* possible_net_t: the namespace, behind a one-member struct. */
typedef struct {
	struct net___rec *net;
} CORE possible_net_t___rec;

struct sock_common___rec {
	/* In the kernel these sit in anonymous unions (skc_addrpair, skc_portpair): CO-RE
	 * finds members of nameless members by name. */
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	unsigned char skc_state;
	unsigned char skc_ipv6only : 1;
	int skc_bound_dev_if;
	possible_net_t___rec skc_net;
	struct in6_addr___rec skc_v6_daddr;
	struct in6_addr___rec skc_v6_rcv_saddr;
} CORE;

/* atomic_t and refcount_t: one int, read by address (see read_queues). */
struct counter___rec {
	int counter;
};

struct sk_backlog___rec {
	struct counter___rec rmem_alloc;
} CORE;

struct kernfs_node___rec {
	__u64 id;
} CORE;

struct cgroup___rec {
	struct kernfs_node___rec *kn;
} CORE;

/* Its first 8 bytes: the cgroup pointer, or before Linux 5.15 a tagged one (cgroup_id_of). */
struct sock_cgroup_data___rec {
	__u64 first;
};

struct socket___rec;

struct sock___rec {
	struct sock_common___rec __sk_common;
	struct sk_backlog___rec sk_backlog;
	struct counter___rec sk_wmem_alloc;
	__u32 sk_ack_backlog;
	__u32 sk_max_ack_backlog;
	unsigned short sk_type;
	unsigned short sk_protocol;
	struct {
		__u32 val;
	} sk_uid;
	struct sock_cgroup_data___rec sk_cgrp_data;
	struct socket___rec *sk_socket;
} CORE;

struct inode___rec {
	unsigned long i_ino;
} CORE;

/* A socket and its inode are allocated together (SOCK_INODE). */
struct socket_alloc___rec {
	struct inode___rec vfs_inode;
} CORE;

struct tcp_sock___rec {
	__u32 rcv_nxt;
	__u32 copied_seq;
	__u32 write_seq;
	__u32 snd_una;
} CORE;

struct udp_sock___rec {
	int forward_deficit;
} CORE;

struct inet_timewait_sock___rec {
	unsigned char tw_substate;
} CORE;

/*
 * The kernel struct names the views above stand for: a loader's BTF digest must keep them
 * whole (lsports' list is SOCKET_RECORD_STRUCTS in src/model/socket_record.rs).
 */

/* __builtin_preserve_field_info kinds (libbpf's enum bpf_field_info_kind). */
#define FIELD_BYTE_OFFSET 0
#define FIELD_BYTE_SIZE 1
#define FIELD_EXISTS 2
#define FIELD_LSHIFT_U64 4
#define FIELD_RSHIFT_U64 5

/* Read an unsigned bitfield through CO-RE, as libbpf's BPF_CORE_READ_BITFIELD_PROBED. */
#define READ_BITFIELD(s, field)                                                              \
	({                                                                                   \
		__u64 value_ = 0;                                                            \
		bpf_probe_read_kernel(&value_,                                               \
				      __builtin_preserve_field_info((s)->field, FIELD_BYTE_SIZE), \
				      (const char *)(s) +                                    \
					      __builtin_preserve_field_info((s)->field,      \
									    FIELD_BYTE_OFFSET)); \
		value_ <<= __builtin_preserve_field_info((s)->field, FIELD_LSHIFT_U64);      \
		value_ >>= __builtin_preserve_field_info((s)->field, FIELD_RSHIFT_U64);      \
		value_;                                                                      \
	})

/* Read the member `field` of `*(s)` into `dst` (same size); on failure `dst` stays as is. */
#define READ_INTO(dst, s, field) bpf_probe_read_kernel(&(dst), sizeof(dst), &(s)->field)

/*
 * Copy `size` bytes (1, 2, 4, 8 or 16) from `src` to `dst`, both aligned to their size (8 for
 * 16): one load and store each, where a memcpy at an offset unknown when compiling goes a byte
 * at a time, and every instruction is one more for the verifier to walk.
 */
static __always_inline void copy_aligned(void *dst, const void *src, __u32 size)
{
	if (size == 1)
		*(__u8 *)dst = *(const __u8 *)src;
	else if (size == 2)
		*(__u16 *)dst = *(const __u16 *)src;
	else if (size == 4)
		*(__u32 *)dst = *(const __u32 *)src;
	else if (size == 8)
		*(__u64 *)dst = *(const __u64 *)src;
	else if (size == 16) {
		((__u64 *)dst)[0] = ((const __u64 *)src)[0];
		((__u64 *)dst)[1] = ((const __u64 *)src)[1];
	}
}

/*
 * Take the member `field` of `*(s)` into `dst` (same size) out of `window`, a char array
 * (8-byte aligned) holding sizeof(window) bytes of `*(s)` from offset `from` on (a multiple of
 * 8); a member outside the window on the running kernel is read on its own. One
 * bpf_probe_read_kernel of a span costs about what one of a single member does, and the walk
 * spends most on those calls. The offset is a CO-RE relocation: a constant once loaded, so the
 * verifier sees a fixed stack offset and prunes the branch not taken.
 */
#define FROM_WINDOW(dst, window, from, s, field)                                           \
	({                                                                                 \
		__u32 at_ = __builtin_preserve_field_info((s)->field, FIELD_BYTE_OFFSET);   \
		if (at_ >= (from) && at_ - (from) + sizeof(dst) <= sizeof(window))         \
			copy_aligned(&(dst), (const char *)(window) + (at_ - (from)),       \
				     sizeof(dst));                                          \
		else                                                                       \
			READ_INTO(dst, s, field);                                          \
	})

/* FROM_WINDOW of a copy of the struct's first bytes. */
#define FROM_COPY(dst, copy, s, field) FROM_WINDOW(dst, copy, 0, s, field)

/* READ_BITFIELD, out of `copy` as FROM_COPY (the load is as wide as the kernel's unit). */
#define BITFIELD_FROM_COPY(copy, s, field)                                                  \
	({                                                                                  \
		__u64 bits_ = 0;                                                            \
		__u32 at_ = __builtin_preserve_field_info((s)->field, FIELD_BYTE_OFFSET);    \
		__u32 size_ = __builtin_preserve_field_info((s)->field, FIELD_BYTE_SIZE);    \
		if (at_ + 8 > sizeof(copy))                                                 \
			bits_ = READ_BITFIELD(s, field);                                    \
		else {                                                                      \
			copy_aligned(&bits_, (const char *)(copy) + at_, size_);            \
			bits_ <<= __builtin_preserve_field_info((s)->field, FIELD_LSHIFT_U64); \
			bits_ >>= __builtin_preserve_field_info((s)->field, FIELD_RSHIFT_U64); \
		}                                                                           \
		bits_;                                                                      \
	})

/*
 * Bytes of sock_common copied at once: every member read_socket takes from it lies in its
 * first 88 on 64-bit kernels (the IPv6 addresses last, at 56 and 72); no more, for the fd
 * walk's stack is tight (task_sockets.bpf.c's record_with_socket).
 */
#define COMMON_COPY 88

static __always_inline __u16 swap16(__u16 value)
{
	return __builtin_bswap16(value);
}

/* Family, ports, addresses and device: what every kind of socket has, out of its `copy`. */
static __always_inline void read_common(struct sock_common___rec *skc, const char *copy_bytes,
					struct socket_record *out)
{
	/* FROM_COPY needs the array's size: view the caller's copy as one again. */
	const char(*copy)[COMMON_COPY] = (const char(*)[COMMON_COPY])copy_bytes;
	__u16 dport = 0;

	FROM_COPY(out->local_port, *copy, skc, skc_num);
	FROM_COPY(dport, *copy, skc, skc_dport);
	out->remote_port = swap16(dport);
	FROM_COPY(out->bound_dev_if, *copy, skc, skc_bound_dev_if);
	if (out->family == AF_INET6) {
		FROM_COPY(out->local_addr, *copy, skc, skc_v6_rcv_saddr);
		FROM_COPY(out->remote_addr, *copy, skc, skc_v6_daddr);
	} else {
		__u32 local = 0, remote = 0;

		FROM_COPY(local, *copy, skc, skc_rcv_saddr);
		FROM_COPY(remote, *copy, skc, skc_daddr);
		__builtin_memcpy(out->local_addr, &local, 4);
		__builtin_memcpy(out->remote_addr, &remote, 4);
	}
}

/* The inode of the network namespace `net`, 0 for none. */
static __always_inline __u32 net_inum(struct net___rec *net)
{
	__u32 inum = 0;

	if (net)
		READ_INTO(inum, net, ns.inum);
	return inum;
}

/* sock_i_ino: the inode allocated with the socket, while the socket has one. */
static __always_inline __u64 inode_of(struct sock___rec *sk)
{
	struct socket___rec *socket = 0;
	unsigned long ino = 0;

	READ_INTO(socket, sk, sk_socket);
	if (socket)
		READ_INTO(ino, (struct socket_alloc___rec *)socket, vfs_inode.i_ino);
	return ino;
}

/*
 * cgroup_id(sock_cgroup_ptr(&sk->sk_cgrp_data)). Before Linux 5.15 the data was a tagged
 * value that, untagged, is the cgroup pointer; a tagged one (net_prio or net_cls in use) means
 * the default hierarchy's root, which has no address here: 0 (unknown) then.
 */
static __always_inline __u64 cgroup_id_of(struct sock___rec *sk)
{
	struct cgroup___rec *cgroup;
	struct kernfs_node___rec *kn = 0;
	__u64 id = 0;
	__u64 first = 0;

	bpf_probe_read_kernel(&first, sizeof(first), &sk->sk_cgrp_data);
	/* A tagged value (bit 0) is not a pointer; a cgroup is aligned. */
	if (!first || (first & 1))
		return 0;
	cgroup = (struct cgroup___rec *)first;
	READ_INTO(kn, cgroup, kn);
	if (kn)
		READ_INTO(id, kn, id);
	return id;
}

/*
 * The window of a full socket read at once after sock_common: from sk_uid on, it holds
 * sk_protocol and sk_type, and a listener's sk_ack_backlog and sk_max_ack_backlog on recent
 * kernels (6.18: 528, 532, 534, 600 and 604); what lies outside it is read on its own.
 */
#define SOCK_WINDOW COMMON_COPY

/* The offset of the window's first byte in struct sock. */
#define SOCK_WINDOW_FROM(sk) (__builtin_preserve_field_info((sk)->sk_uid, FIELD_BYTE_OFFSET) & ~7u)

/*
 * tcp_diag_get_info and udp_diag_get_info: the two queues of a full socket (`window` as
 * SOCK_WINDOW says).
 */
static __always_inline void read_queues(struct sock___rec *sk, const char *window_bytes,
					struct socket_record *out)
{
	const char(*window)[SOCK_WINDOW] = (const char(*)[SOCK_WINDOW])window_bytes;
	__u32 from = SOCK_WINDOW_FROM(sk);

	if (out->protocol == IPPROTO_UDP) {
		int rmem = 0, deficit = 0, wmem = 0;
		struct udp_sock___rec *up = (struct udp_sock___rec *)sk;

		bpf_probe_read_kernel(&rmem, sizeof(rmem), &sk->sk_backlog.rmem_alloc);
		if (__builtin_preserve_field_info(up->forward_deficit, FIELD_EXISTS))
			READ_INTO(deficit, up, forward_deficit);
		bpf_probe_read_kernel(&wmem, sizeof(wmem), &sk->sk_wmem_alloc);
		out->recv_q = rmem - deficit;
		out->send_q = wmem - 1;
	} else if (out->state == TCP_LISTEN) {
		FROM_WINDOW(out->recv_q, *window, from, sk, sk_ack_backlog);
		FROM_WINDOW(out->send_q, *window, from, sk, sk_max_ack_backlog);
	} else {
		struct tcp_sock___rec *tp = (struct tcp_sock___rec *)sk;
		__u32 rcv_nxt = 0, copied_seq = 0, write_seq = 0, snd_una = 0;
		int unread;

		READ_INTO(rcv_nxt, tp, rcv_nxt);
		READ_INTO(copied_seq, tp, copied_seq);
		READ_INTO(write_seq, tp, write_seq);
		READ_INTO(snd_una, tp, snd_una);
		unread = (int)(rcv_nxt - copied_seq);
		out->recv_q = unread > 0 ? unread : 0;
		out->send_q = write_seq - snd_una;
	}
}

/*
 * Fill `out` (which the caller zeroed) with the socket at `socket`, any of a full, TIME_WAIT or
 * request socket. Returns 0, or -1 when it is not an IPv4/IPv6 TCP or UDP socket (`out` is
 * then partly filled and must not be used). `netns` and `inode` are what the caller already
 * read of the socket (a walk holding its file: the file's inode is sock_i_ino's), 0 for "read
 * them here"; family, protocol and state are always read here.
 */
static __always_inline int read_socket_with(struct sock_common *socket, struct socket_record *out,
					    __u32 netns, __u64 inode)
{
	struct sock_common___rec *skc = (struct sock_common___rec *)socket;
	struct sock___rec *sk = (struct sock___rec *)socket;
	char copy[COMMON_COPY] __attribute__((aligned(8)));
	unsigned short family = 0, type = 0, protocol = 0;
	unsigned char state = 0, v6only = 0;
	struct net___rec *net = 0;

	bpf_probe_read_kernel(copy, sizeof(copy), socket);
	FROM_COPY(family, copy, skc, skc_family);
	FROM_COPY(state, copy, skc, skc_state);
	if (family != AF_INET && family != AF_INET6)
		return -1;
	out->family = family;
	if (!netns) {
		FROM_COPY(net, copy, skc, skc_net.net);
		netns = net_inum(net);
	}
	out->netns = netns;
	read_common(skc, copy, out);
	/* Only TCP has TIME_WAIT and request sockets (sk_fullsock is false for these two). */
	if (state == TCP_TIME_WAIT) {
		out->protocol = IPPROTO_TCP;
		READ_INTO(out->state, (struct inet_timewait_sock___rec *)skc, tw_substate);
		return 0;
	}
	if (state == TCP_NEW_SYN_RECV) {
		out->protocol = IPPROTO_TCP;
		out->state = TCP_SYN_RECV;
		return 0;
	}
	if (family == AF_INET6 && BITFIELD_FROM_COPY(copy, skc, skc_ipv6only))
		v6only = 1;
	/* Done with sock_common: the copy's bytes now hold SOCK_WINDOW. */
	bpf_probe_read_kernel(copy, sizeof(copy), (const char *)sk + SOCK_WINDOW_FROM(sk));
	FROM_WINDOW(type, copy, SOCK_WINDOW_FROM(sk), sk, sk_type);
	FROM_WINDOW(protocol, copy, SOCK_WINDOW_FROM(sk), sk, sk_protocol);
	if (protocol == IPPROTO_TCP && type == SOCK_STREAM)
		out->protocol = IPPROTO_TCP;
	else if (protocol == IPPROTO_UDP && type == SOCK_DGRAM)
		out->protocol = IPPROTO_UDP;
	else
		return -1;
	out->state = state;
	out->flags = RECORD_FULL;
	if (v6only)
		out->flags |= RECORD_V6ONLY;
	FROM_WINDOW(out->uid, copy, SOCK_WINDOW_FROM(sk), sk, sk_uid.val);
	out->inode = inode ? inode : inode_of(sk);
	out->cgroup_id = cgroup_id_of(sk);
	read_queues(sk, copy, out);
	return 0;
}

/* read_socket_with, reading everything: for a socket reached through no file. */
static __always_inline int read_socket(struct sock_common *socket, struct socket_record *out)
{
	return read_socket_with(socket, out, 0, 0);
}

#endif
