/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI between the XDP relay (bpf/xdp_relay.bpf.c) and userspace
 * (datapath/bpf): every map key and value, enum and map name. This is the only
 * copy; both sides include it. It compiles as C (clang -target bpf) and as C++
 * (g++ 12, clang++ 14) and checks its own layout with static asserts.
 *
 * Rules (docs/STYLE.md R4/R5): only <linux/types.h> types; no bool, no
 * bitfields, no enums as members (enum sizes differ between languages); explicit
 * padding, which must be zero (hash keys are compared bytewise); byte order in
 * the type (__be16/__be32 = network order, as on the wire) and in the comment.
 * Everything is naturally aligned for the BPF target and x86-64 alike, so the
 * struct layout is the same in both worlds.
 *
 * Map overview (details in docs/bpf_abi.md):
 *   xems_flows       HASH          xems_flow_key   -> xems_flow_value   pinned
 *   xems_flow_stats  PERCPU_ARRAY  __u32 stats_idx -> xems_flow_stats   pinned
 *   xems_counters    PERCPU_ARRAY  __u32 counter   -> xems_counter_value pinned
 *   xems_tx_ports    DEVMAP_HASH   __u32 ifindex   -> bpf_devmap_val    pinned
 * Pinned maps live under <pin root>/<map name>, e.g.
 * /sys/fs/bpf/xems/<instance>/xems_flows; the loader sets the root through
 * bpf_object_open_opts.pin_root_path.
 */
#ifndef XEMS_RELAY_ABI_H
#define XEMS_RELAY_ABI_H

#include <linux/types.h>

#ifdef __cplusplus
#define XEMS_ABI_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define XEMS_ABI_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
#define XEMS_ABI_SIZE(type, size)                                              \
	XEMS_ABI_ASSERT(sizeof(type) == (size), #type " size")
#define XEMS_ABI_OFFSET(type, member, off)                                     \
	XEMS_ABI_ASSERT(__builtin_offsetof(type, member) == (off),             \
			#type "." #member " offset")

/* Bumped on any incompatible change of the structs or map set below. The
 * loader refuses to reuse pinned maps whose key/value sizes differ. */
#define XEMS_ABI_VERSION 1

/* Map names: the BPF object's map identifiers, the skeleton's
 * skel->maps.<name>, and the pin file names under the pin root. */
#define XEMS_MAP_FLOWS "xems_flows"
#define XEMS_MAP_FLOW_STATS "xems_flow_stats"
#define XEMS_MAP_COUNTERS "xems_counters"
#define XEMS_MAP_TX_PORTS "xems_tx_ports"

/* Compiled-in capacities; the loader may change them with
 * bpf_map__set_max_entries() before load (per-CPU stats cost
 * sizeof(struct xems_flow_stats) * entries * possible CPUs). */
#define XEMS_DEFAULT_MAX_FLOWS 16384
#define XEMS_DEFAULT_MAX_TX_PORTS 64

/* Address family of an endpoint; the values equal xems::Family. */
enum xems_family {
	XEMS_FAMILY_NONE = 0,
	XEMS_FAMILY_IPV4 = 4,
	XEMS_FAMILY_IPV6 = 6,
};

/*
 * An IP address and UDP port. IPv4 uses addr[0] and leaves addr[1..3] zero, so
 * an endpoint can be compared and hashed as plain bytes.
 */
struct xems_endpoint {
	__be32 addr[4]; /*  0 network order */
	__be16 port;	/* 16 network order */
	__u8 family;	/* 18 enum xems_family */
	__u8 pad;	/* 19 zero */
};
XEMS_ABI_SIZE(struct xems_endpoint, 20);
XEMS_ABI_OFFSET(struct xems_endpoint, port, 16);
XEMS_ABI_OFFSET(struct xems_endpoint, family, 18);

/*
 * xems_flows key: the local socket xemsd owns, (local address, local UDP port,
 * family), as it appears in the destination fields of an arriving packet. One
 * entry per local socket (the RTP one and, without rtcp-mux, the RTCP one).
 */
struct xems_flow_key {
	struct xems_endpoint local; /* 0 */
};
XEMS_ABI_SIZE(struct xems_flow_key, 20);

/* enum xems_src_mode: what the program does with the packet's source. */
enum xems_src_mode {
	/* Forward only if source == expected_src exactly; anything else goes
	 * up (XEMS_CNT_PASS_FOREIGN) so userspace can learn/latch and then
	 * update the entry. An unset expected_src (family 0) passes all up. */
	XEMS_SRC_LEARN = 0,
	/* Forward only from expected_src; drop the rest and count it
	 * (XEMS_CNT_DROP_FOREIGN, xems_flow_stats.foreign_drops): no RTP bleed. */
	XEMS_SRC_STRICT = 1,
	/* Forward from any source. */
	XEMS_SRC_IGNORE = 2,
};

/* xems_flow_value.flags */
/* Forward in XDP. Clear: every packet goes up (XEMS_CNT_PASS_DISABLED). */
#define XEMS_FLOW_F_OFFLOAD (1U << 0)
/* An RTCP-only socket: packets must be RTCP (version 2, second byte
 * 192..223); they use out[0]. No payload-type check. */
#define XEMS_FLOW_F_RTCP (1U << 1)
/* An RTP socket with rtcp-mux: RFC 5761 demux by the second byte, RTCP
 * (192..223) uses out[1], RTP uses out[0]. */
#define XEMS_FLOW_F_MUX (1U << 2)
/* RTP payload types must be in pt_allowed (else XEMS_CNT_PASS_UNKNOWN_PT). */
#define XEMS_FLOW_F_CHECK_PT (1U << 3)

/* xems_output.flags */
/* The output may be used. Clear: XEMS_CNT_PASS_OUTPUT. */
#define XEMS_OUT_F_VALID (1U << 0)
/* Use ifindex, src_mac and dst_mac as given instead of bpf_fib_lookup(). */
#define XEMS_OUT_F_FIXED_L2 (1U << 1)
/* With XEMS_OUT_F_FIXED_L2: set the VLAN id of the frame's innermost tag to
 * vlan_id (PCP/DEI kept). The program never adds or removes tags, so an
 * untagged frame with this flag goes up (XEMS_CNT_PASS_VLAN). */
#define XEMS_OUT_F_VLAN (1U << 2)
#define XEMS_OUT_F_ALL                                                         \
	(XEMS_OUT_F_VALID | XEMS_OUT_F_FIXED_L2 | XEMS_OUT_F_VLAN)
#define XEMS_FLOW_F_ALL                                                        \
	(XEMS_FLOW_F_OFFLOAD | XEMS_FLOW_F_RTCP | XEMS_FLOW_F_MUX |            \
	 XEMS_FLOW_F_CHECK_PT)

/*
 * Where a forwarded packet goes: it leaves from our sink socket (src) towards
 * the peer (dst). Both families must equal the arriving packet's family;
 * IPv4<->IPv6 bridging is not done in XDP (XEMS_CNT_PASS_OUTPUT).
 *
 * L2: with XEMS_OUT_F_FIXED_L2 the frame gets src_mac/dst_mac and leaves on
 * ifindex; otherwise bpf_fib_lookup(src, dst, ingress ifindex) picks the
 * egress device and both MACs, and a missing neighbour entry sends the packet
 * up (XEMS_CNT_PASS_NO_NEIGH) so the worker's sendmsg() resolves it. Egress on
 * the ingress device is XDP_TX, any other device must be in xems_tx_ports
 * (XDP_REDIRECT), else XEMS_CNT_PASS_NO_TXPORT.
 */
struct xems_output {
	struct xems_endpoint src; /*  0 new IP/UDP source: our sink socket */
	struct xems_endpoint dst; /* 20 new IP/UDP destination: the peer */
	__u32 flags;		  /* 40 XEMS_OUT_F_* */
	__u32 ifindex;		  /* 44 egress device, XEMS_OUT_F_FIXED_L2 */
	__u8 src_mac[6];	  /* 48 XEMS_OUT_F_FIXED_L2 */
	__u8 dst_mac[6];	  /* 54 XEMS_OUT_F_FIXED_L2 */
	__u16 vlan_id;		  /* 60 host order, 0..4095, XEMS_OUT_F_VLAN */
	__u16 pad;		  /* 62 zero */
};
XEMS_ABI_SIZE(struct xems_output, 64);
XEMS_ABI_OFFSET(struct xems_output, dst, 20);
XEMS_ABI_OFFSET(struct xems_output, flags, 40);
XEMS_ABI_OFFSET(struct xems_output, ifindex, 44);
XEMS_ABI_OFFSET(struct xems_output, src_mac, 48);
XEMS_ABI_OFFSET(struct xems_output, dst_mac, 54);
XEMS_ABI_OFFSET(struct xems_output, vlan_id, 60);

/* Output indexes. */
#define XEMS_OUT_RTP 0	/* RTP, and everything on a non-mux socket */
#define XEMS_OUT_RTCP 1 /* RTCP on an rtcp-mux'd socket */
#define XEMS_NUM_OUTPUTS 2

/*
 * xems_flows value: what to do with a packet that arrived on one local socket.
 *
 * Updates (re-INVITE, latching, hold) rewrite the whole value in place with
 * bpf_map_update_elem(BPF_ANY) on the same key and a new version. The hash map
 * never modifies a linked element: it fills a spare element with the new value,
 * links it at the head of the bucket's RCU list, then unlinks the old one. A
 * packet looks the key up once and reads only the element it found, under RCU,
 * so per CPU it sees the old value or the new one, and every lookup that
 * starts after the update syscall returned sees the new value.
 * One caveat (6.1 and later, preallocated maps): the unlinked element becomes
 * the updating CPU's spare at once, without waiting for an RCU grace period,
 * and a delete pushes the element to the free list at once. If the same CPU
 * updates or inserts again while an XDP program elsewhere is still reading the
 * old element (tens of nanoseconds, longer if an interrupt hits), that one
 * packet can see a mix of two values. docs/bpf_abi.md: why this is tolerable
 * and how the daemon keeps the window small (no batched updates of live keys).
 */
struct xems_flow_value {
	/* Set by userspace, new on every update; the program copies it into
	 * xems_flow_stats.last_version. */
	__u32 version;			   /*  0 */
	__u32 stats_idx;		   /*  4 xems_flow_stats index */
	__u32 flags;			   /*  8 XEMS_FLOW_F_* */
	__u8 src_mode;			   /* 12 enum xems_src_mode */
	__u8 pad0[3];			   /* 13 zero */
	struct xems_endpoint expected_src; /* 16 LEARN/STRICT: the peer */
	/* RTP payload type pt (0..127) is allowed if bit (pt % 32) of word
	 * (pt / 32) is set; used with XEMS_FLOW_F_CHECK_PT. */
	__u32 pt_allowed[4];			  /* 36 */
	struct xems_output out[XEMS_NUM_OUTPUTS]; /* 52 XEMS_OUT_RTP/RTCP */
};
XEMS_ABI_SIZE(struct xems_flow_value, 180);
XEMS_ABI_OFFSET(struct xems_flow_value, stats_idx, 4);
XEMS_ABI_OFFSET(struct xems_flow_value, flags, 8);
XEMS_ABI_OFFSET(struct xems_flow_value, src_mode, 12);
XEMS_ABI_OFFSET(struct xems_flow_value, expected_src, 16);
XEMS_ABI_OFFSET(struct xems_flow_value, pt_allowed, 36);
XEMS_ABI_OFFSET(struct xems_flow_value, out, 52);

/*
 * xems_flow_stats value, one per CPU per stats_idx (PERCPU_ARRAY). Written
 * only for packets of this flow that XDP forwarded or dropped; packets passed
 * up are counted by the userspace worker, so the two add up without overlap.
 * Userspace merges the CPUs: sums, the newest last_seen_ns, and the RTP
 * fields of the CPU with the newest last_rtp_ns.
 */
struct xems_flow_stats {
	__u64 packets;	     /*  0 forwarded (RTP and RTCP) */
	__u64 bytes;	     /*  8 UDP payload bytes of those */
	__u64 rtcp_packets;  /* 16 of packets, RTCP */
	__u64 foreign_drops; /* 24 dropped: foreign source in STRICT mode */
	/* Time of the last forwarded packet. By default CLOCK_MONOTONIC_COARSE
	 * (bpf_ktime_get_coarse_ns(): up to one tick behind CLOCK_MONOTONIC,
	 * never ahead); with rodata cfg_precise_time, CLOCK_MONOTONIC. */
	__u64 last_seen_ns; /* 32 */
	__u64 last_rtp_ns;  /* 40 same, last forwarded RTP packet */
	/* The RTP header of the last forwarded RTP packet, host order. */
	__u32 last_ssrc;    /* 48 */
	__u16 last_seq;	    /* 52 */
	__u8 last_pt;	    /* 54 */
	__u8 pad;	    /* 55 */
	__u32 last_version; /* 56 xems_flow_value.version of the last packet */
	__u32 pad1;	    /* 60 */
};
XEMS_ABI_SIZE(struct xems_flow_stats, 64);
XEMS_ABI_OFFSET(struct xems_flow_stats, last_seen_ns, 32);
XEMS_ABI_OFFSET(struct xems_flow_stats, last_ssrc, 48);
XEMS_ABI_OFFSET(struct xems_flow_stats, last_version, 56);

/* xems_counters key: one per reason, from relay_counters.inc. */
enum xems_counter {
#define XEMS_COUNTER(id, name, desc) XEMS_CNT_##id,
#include "relay_counters.inc"
#undef XEMS_COUNTER
	XEMS_CNT_MAX
};

/* xems_counters value, per CPU. */
struct xems_counter_value {
	__u64 packets; /* 0 */
	__u64 bytes;   /* 8 whole frame (L2) bytes as XDP saw them */
};
XEMS_ABI_SIZE(struct xems_counter_value, 16);

#endif /* XEMS_RELAY_ABI_H */
