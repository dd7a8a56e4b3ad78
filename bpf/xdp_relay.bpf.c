// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_relay: the XDP fast path of xemsd on its media interfaces.
 *
 * A packet is forwarded here only if it is UDP to a socket xemsd owns and
 * offloaded (xems_flows), comes from an acceptable source, looks like
 * RTP/RTCP, and its output can be reached without the kernel's help.
 * Everything else goes up (XDP_PASS) to the io_uring worker of that socket,
 * counted by reason in xems_counters. The pipeline:
 *
 *   1. Ethernet, up to 2 VLAN tags, IPv4 (no options, no fragments) or IPv6
 *      (no extension headers), UDP with consistent lengths.
 *   2. xems_flows lookup by (destination address, destination port).
 *   3. STUN and DTLS go up (ICE and DTLS-SRTP are handled by the daemon),
 *      whatever the source: ICE checks come from new addresses.
 *   4. Source check by xems_flow_value.src_mode: LEARN passes foreign sources
 *      up, STRICT drops them (counted), IGNORE accepts all.
 *   5. RTP/RTCP sanity: version 2; RTCP by second byte 192..223 (RFC 5761)
 *      on an rtcp-mux or RTCP socket; RTP payload type in the allowed set.
 *   6. Output (out[1] for RTCP on a mux socket, else out[0]): valid, same
 *      family, TTL/hop limit > 1, L2 from the output or bpf_fib_lookup(),
 *      egress device reachable (ingress: XDP_TX; else xems_tx_ports).
 *   7. Rewrite: MACs, (VLAN id), IP addresses, UDP ports, TTL/hop limit - 1,
 *      IPv4 header and UDP checksums incrementally (RFC 1624).
 *   8. Per-flow per-CPU stats, the global forwarded counter, XDP_TX or
 *      XDP_REDIRECT.
 *
 * Decisions that may send the packet up all come before the first write to
 * it; a packet that goes up is exactly what arrived.
 *
 * TTL: the relay decrements the TTL/hop limit like a router, and packets
 * arriving with <= 1 go up (XEMS_CNT_PASS_TTL). They are addressed to our own
 * socket, so the kernel delivers them to the worker (no ICMP time exceeded is
 * generated), which forwards them with its socket's default TTL.
 *
 * The program targets Linux 6.1 and later and uses nothing newer: helpers
 * bpf_map_lookup_elem, bpf_fib_lookup (flags DIRECT/OUTPUT only),
 * bpf_redirect_map (fallback action in the flags), bpf_ktime_get_ns,
 * bpf_ktime_get_coarse_ns (5.11); HASH, PERCPU_ARRAY and DEVMAP_HASH maps;
 * BTF map definitions; no loops the compiler does not unroll, no kfuncs.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "parsing.h"
#include "relay_abi.h"
#include "xdp_relay_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Load-time configuration (R7): set in skel->rodata before load. */
/* 0: pass every packet up (XEMS_CNT_PASS_OFFLOAD_OFF); for probing and as a
 * kill switch that keeps the pinned maps. */
const volatile __u32 cfg_offload_enabled = 1;
/* Flags for bpf_fib_lookup(): 0 (full policy routing lookup, input route
 * from the ingress device) or BPF_FIB_LOOKUP_DIRECT / BPF_FIB_LOOKUP_OUTPUT;
 * 6.1 rejects any other flag with -EINVAL (counted as fib_failed). */
const volatile __u32 cfg_fib_flags = 0;
/* Clock of xems_flow_stats.last_seen_ns/last_rtp_ns. 0 (default):
 * bpf_ktime_get_coarse_ns(), CLOCK_MONOTONIC_COARSE, one scheduler tick of
 * resolution, plenty for media timeouts counted in seconds. 1:
 * bpf_ktime_get_ns(), CLOCK_MONOTONIC, exact -- and on a VM with kvm-clock
 * about 20 ns per packet, a third of the program's cost (perf/bench_xdp.cpp). */
const volatile __u32 cfg_precise_time = 0;

#define XEMS_STUN_MAGIC_COOKIE 0x2112A442
#define XEMS_STUN_HEADER_LEN 20
#define XEMS_RTP_HEADER_LEN 12
#define XEMS_RTCP_HEADER_LEN 8
#define XEMS_AF_INET 2 /* <sys/socket.h> is not available to BPF C */
#define XEMS_AF_INET6 10

/*
 * What the parser found; pointers are into the packet. Code branches on the
 * scalar v6, never on a packet pointer being NULL: the verifier does not
 * treat packet pointers as non-NULL, so after `if (iph)` it would also walk
 * the impossible else branch with a NULL ip6h and reject the program.
 */
struct pkt {
	struct xems_l2 l2;
	struct iphdr *iph;    /* valid if !v6 */
	struct ipv6hdr *ip6h; /* valid if v6 */
	struct udphdr *udph;
	__u32 v6;
	__u8 *payload; /* UDP payload */
	__u32 plen;    /* UDP payload length (UDP length - 8) */
	__u32 l3_len;  /* IP total length, header included */
	struct xems_endpoint src;
};

static __always_inline int count(__u32 idx, __u64 frame_len, int action)
{
	struct xems_counter_value *c;

	c = bpf_map_lookup_elem(&xems_counters, &idx);
	if (c) {
		c->packets++;
		c->bytes += frame_len;
	}
	return action;
}

static __always_inline int endpoint_equal(const struct xems_endpoint *a,
					  const struct xems_endpoint *b)
{
	/* 20 bytes as five words: padding is zero on both sides. */
	const __u32 *x = (const __u32 *)a;
	const __u32 *y = (const __u32 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) |
		(x[4] ^ y[4])) == 0;
}

/* Parses L3/L4 into *p and the flow key. Returns -1 on success, else the
 * pass-up counter index. */
static __always_inline int parse_packet(struct hdr_cursor *nh, void *data_end,
					struct pkt *p,
					struct xems_flow_key *key)
{
	int proto, ulen;
	__u32 l3_payload;

	proto = parse_ethhdr_vlan(nh, data_end, &p->l2);
	if (proto < 0)
		return XEMS_CNT_PASS_MALFORMED;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph;

		proto = parse_iphdr(nh, data_end, &iph);
		if (proto < 0)
			return XEMS_CNT_PASS_MALFORMED;
		if (proto != IPPROTO_UDP)
			return XEMS_CNT_PASS_NOT_UDP;
		if (iph->ihl != 5 ||
		    (iph->frag_off & bpf_htons(XEMS_IP_MF | XEMS_IP_OFFSET)))
			return XEMS_CNT_PASS_FRAG;
		p->l3_len = bpf_ntohs(iph->tot_len);
		if (p->l3_len < sizeof(*iph) ||
		    (void *)iph + p->l3_len > data_end)
			return XEMS_CNT_PASS_MALFORMED;
		l3_payload = p->l3_len - sizeof(*iph);
		p->iph = iph;
		key->local.addr[0] = iph->daddr;
		key->local.family = XEMS_FAMILY_IPV4;
		p->src.addr[0] = iph->saddr;
		p->src.family = XEMS_FAMILY_IPV4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h;

		proto = parse_ip6hdr(nh, data_end, &ip6h);
		if (proto < 0)
			return XEMS_CNT_PASS_MALFORMED;
		if (proto != IPPROTO_UDP)
			return ipv6_is_ext_hdr(proto) ? XEMS_CNT_PASS_FRAG :
							XEMS_CNT_PASS_NOT_UDP;
		l3_payload = bpf_ntohs(ip6h->payload_len);
		p->l3_len = l3_payload + sizeof(*ip6h);
		if ((void *)ip6h + p->l3_len > data_end)
			return XEMS_CNT_PASS_MALFORMED;
		p->ip6h = ip6h;
		p->v6 = 1;
		__builtin_memcpy(key->local.addr, &ip6h->daddr, 16);
		key->local.family = XEMS_FAMILY_IPV6;
		__builtin_memcpy(p->src.addr, &ip6h->saddr, 16);
		p->src.family = XEMS_FAMILY_IPV6;
	} else {
		return XEMS_CNT_PASS_NOT_UDP;
	}

	ulen = parse_udphdr(nh, data_end, l3_payload, &p->udph);
	if (ulen < 0)
		return XEMS_CNT_PASS_MALFORMED;
	/* The IPv6 UDP checksum is mandatory (RFC 8200 8.1): zero is invalid
	 * and the stack drops it; let it. */
	if (p->v6 && p->udph->check == 0)
		return XEMS_CNT_PASS_MALFORMED;
	p->payload = nh->pos;
	p->plen = ulen - sizeof(struct udphdr);
	key->local.port = p->udph->dest;
	p->src.port = p->udph->source;
	return -1;
}

/* Rewrites addresses, ports, TTL and both checksums of an IPv4 packet. */
static __always_inline void rewrite_ipv4(struct iphdr *iph, struct udphdr *udph,
					 const struct xems_output *out)
{
	__u16 *ttl_word = (__u16 *)&iph->ttl; /* ttl and protocol */
	__u32 new_saddr = out->src.addr[0];
	__u32 new_daddr = out->dst.addr[0];
	__u16 old_ttl_word = *ttl_word;
	__u64 addr_diff;
	__u16 check;

	addr_diff = csum_diff32(iph->saddr, new_saddr) +
		    csum_diff32(iph->daddr, new_daddr);
	iph->ttl--;
	iph->check = csum_apply(
		iph->check, addr_diff + csum_diff16(old_ttl_word, *ttl_word));
	iph->saddr = new_saddr;
	iph->daddr = new_daddr;

	/* A zero UDP checksum over IPv4 means "none" (RFC 768): keep it. */
	if (udph->check) {
		check = csum_apply(
			udph->check,
			addr_diff + csum_diff16(udph->source, out->src.port) +
				csum_diff16(udph->dest, out->dst.port));
		/* A computed zero is sent as all ones (RFC 768). */
		udph->check = check ? check : 0xffff;
	}
	udph->source = out->src.port;
	udph->dest = out->dst.port;
}

/* Rewrites addresses, ports, hop limit and the UDP checksum of IPv6. */
static __always_inline void rewrite_ipv6(struct ipv6hdr *ip6h,
					 struct udphdr *udph,
					 const struct xems_output *out)
{
	__u32 *saddr = ip6h->saddr.in6_u.u6_addr32;
	__u32 *daddr = ip6h->daddr.in6_u.u6_addr32;
	__u64 diff = 0;
	__u16 check;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		diff += csum_diff32(saddr[i], out->src.addr[i]);
		diff += csum_diff32(daddr[i], out->dst.addr[i]);
		saddr[i] = out->src.addr[i];
		daddr[i] = out->dst.addr[i];
	}
	diff += csum_diff16(udph->source, out->src.port);
	diff += csum_diff16(udph->dest, out->dst.port);
	check = csum_apply(udph->check, diff);
	udph->check = check ? check : 0xffff;
	udph->source = out->src.port;
	udph->dest = out->dst.port;
	/* The hop limit is not covered by any checksum. */
	ip6h->hop_limit--;
}

/* Fills a FIB lookup for the rewritten packet: from our socket to the peer,
 * as if it arrived on the ingress device. */
static __always_inline void fib_params(struct bpf_fib_lookup *fib,
				       const struct pkt *p,
				       const struct xems_output *out,
				       __u32 ingress_ifindex)
{
	fib->l4_protocol = IPPROTO_UDP;
	fib->sport = out->src.port;
	fib->dport = out->dst.port;
	fib->tot_len = p->l3_len; /* enables the MTU check */
	fib->ifindex = ingress_ifindex;
	if (!p->v6) {
		fib->family = XEMS_AF_INET;
		fib->tos = p->iph->tos;
		fib->ipv4_src = out->src.addr[0];
		fib->ipv4_dst = out->dst.addr[0];
	} else {
		fib->family = XEMS_AF_INET6;
		fib->flowinfo = *(__be32 *)p->ip6h & bpf_htonl(0x0fffffff);
		__builtin_memcpy(fib->ipv6_src, out->src.addr, 16);
		__builtin_memcpy(fib->ipv6_dst, out->dst.addr, 16);
	}
}

/* The RTP header fields the stats keep; read where the bounds are known. */
struct rtp_fields {
	__u32 ssrc; /* host order */
	__u16 seq;  /* host order */
	__u8 pt;
};

static __always_inline void update_flow_stats(const struct xems_flow_value *val,
					      __u32 plen, int rtcp,
					      const struct rtp_fields *rtp)
{
	struct xems_flow_stats *st;
	__u64 now;

	st = bpf_map_lookup_elem(&xems_flow_stats, &val->stats_idx);
	if (!st)
		return;
	now = cfg_precise_time ? bpf_ktime_get_ns() : bpf_ktime_get_coarse_ns();
	st->packets++;
	st->bytes += plen;
	st->last_seen_ns = now;
	st->last_version = val->version;
	if (rtcp) {
		st->rtcp_packets++;
	} else {
		st->last_rtp_ns = now;
		st->last_pt = rtp->pt;
		st->last_seq = rtp->seq;
		st->last_ssrc = rtp->ssrc;
	}
}

SEC("xdp")
int xems_xdp_relay(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	__u64 frame_len = data_end - data;
	struct hdr_cursor nh = {.pos = data};
	struct xems_flow_key key = {};
	struct pkt p = {};
	const struct xems_flow_value *val;
	const struct xems_output *out;
	const __u8 *smac, *dmac;
	struct bpf_fib_lookup fib;
	struct rtp_fields rtp = {};
	__u32 egress;
	__u8 b0, b1;
	int reason, rtcp, idx, rc;

	if (!cfg_offload_enabled)
		return count(XEMS_CNT_PASS_OFFLOAD_OFF, frame_len, XDP_PASS);

	reason = parse_packet(&nh, data_end, &p, &key);
	if (reason >= 0)
		return count(reason, frame_len, XDP_PASS);

	val = bpf_map_lookup_elem(&xems_flows, &key);
	if (!val)
		return count(XEMS_CNT_PASS_NO_FLOW, frame_len, XDP_PASS);
	if (!(val->flags & XEMS_FLOW_F_OFFLOAD))
		return count(XEMS_CNT_PASS_DISABLED, frame_len, XDP_PASS);

	/* From here every payload read is checked twice: against the UDP
	 * length (Ethernet padding is not payload) and against data_end (for
	 * the verifier, which cannot relate the two). */
	if (p.plen < 1 || (void *)(p.payload + 1) > data_end)
		return count(XEMS_CNT_PASS_BAD_RTP, frame_len, XDP_PASS);
	b0 = p.payload[0];

	/* RFC 7983 demultiplexing by the first byte. */
	if (b0 <= 3 && p.plen >= XEMS_STUN_HEADER_LEN &&
	    (void *)(p.payload + XEMS_STUN_HEADER_LEN) <= data_end &&
	    *(__be32 *)(p.payload + 4) == bpf_htonl(XEMS_STUN_MAGIC_COOKIE))
		return count(XEMS_CNT_PASS_STUN, frame_len, XDP_PASS);
	if (b0 >= 20 && b0 <= 63)
		return count(XEMS_CNT_PASS_DTLS, frame_len, XDP_PASS);

	switch (val->src_mode) {
	case XEMS_SRC_IGNORE:
		break;
	case XEMS_SRC_STRICT:
		if (!endpoint_equal(&p.src, &val->expected_src)) {
			struct xems_flow_stats *st;

			st = bpf_map_lookup_elem(&xems_flow_stats,
						 &val->stats_idx);
			if (st)
				st->foreign_drops++;
			return count(XEMS_CNT_DROP_FOREIGN, frame_len,
				     XDP_DROP);
		}
		break;
	default: /* XEMS_SRC_LEARN, and unknown modes: the safe choice */
		if (!endpoint_equal(&p.src, &val->expected_src))
			return count(XEMS_CNT_PASS_FOREIGN, frame_len,
				     XDP_PASS);
		break;
	}

	/* RTP and RTCP both start with version 2 and at least 8 bytes. */
	if (p.plen < XEMS_RTCP_HEADER_LEN || (b0 >> 6) != 2 ||
	    (void *)(p.payload + XEMS_RTCP_HEADER_LEN) > data_end)
		return count(XEMS_CNT_PASS_BAD_RTP, frame_len, XDP_PASS);
	b1 = p.payload[1];
	rtcp = b1 >= 192 && b1 <= 223;
	idx = XEMS_OUT_RTP;
	if (val->flags & XEMS_FLOW_F_RTCP) {
		if (!rtcp)
			return count(XEMS_CNT_PASS_BAD_RTP, frame_len,
				     XDP_PASS);
	} else if (rtcp && (val->flags & XEMS_FLOW_F_MUX)) {
		idx = XEMS_OUT_RTCP;
	} else {
		rtcp = 0;
		if (p.plen < XEMS_RTP_HEADER_LEN + 4 * (__u32)(b0 & 0x0f) ||
		    (void *)(p.payload + XEMS_RTP_HEADER_LEN) > data_end)
			return count(XEMS_CNT_PASS_BAD_RTP, frame_len,
				     XDP_PASS);
		rtp.pt = b1 & 0x7f;
		if ((val->flags & XEMS_FLOW_F_CHECK_PT) &&
		    !(val->pt_allowed[rtp.pt >> 5] & (1U << (rtp.pt & 31))))
			return count(XEMS_CNT_PASS_UNKNOWN_PT, frame_len,
				     XDP_PASS);
		rtp.seq = bpf_ntohs(*(__be16 *)(p.payload + 2));
		rtp.ssrc = bpf_ntohl(*(__be32 *)(p.payload + 8));
	}

	out = &val->out[idx];
	if (!(out->flags & XEMS_OUT_F_VALID) ||
	    out->src.family != key.local.family ||
	    out->dst.family != key.local.family)
		return count(XEMS_CNT_PASS_OUTPUT, frame_len, XDP_PASS);
	if (p.v6 ? p.ip6h->hop_limit <= 1 : p.iph->ttl <= 1)
		return count(XEMS_CNT_PASS_TTL, frame_len, XDP_PASS);

	if (out->flags & XEMS_OUT_F_FIXED_L2) {
		if ((out->flags & XEMS_OUT_F_VLAN) && !p.l2.vlan_depth)
			return count(XEMS_CNT_PASS_VLAN, frame_len, XDP_PASS);
		egress = out->ifindex;
		smac = out->src_mac;
		dmac = out->dst_mac;
	} else {
		/* The FIB names the egress device, not the VLAN tags it
		 * would need, and VLAN devices cannot transmit XDP frames:
		 * tagged frames are forwarded with fixed-L2 outputs only. */
		if (p.l2.vlan_depth)
			return count(XEMS_CNT_PASS_VLAN, frame_len, XDP_PASS);
		__builtin_memset(&fib, 0, sizeof(fib));
		fib_params(&fib, &p, out, ctx->ingress_ifindex);
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), cfg_fib_flags);
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			return count(XEMS_CNT_PASS_NO_NEIGH, frame_len,
				     XDP_PASS);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return count(XEMS_CNT_PASS_FIB, frame_len, XDP_PASS);
		egress = fib.ifindex;
		smac = fib.smac;
		dmac = fib.dmac;
	}
	if (egress != ctx->ingress_ifindex &&
	    !bpf_map_lookup_elem(&xems_tx_ports, &egress))
		return count(XEMS_CNT_PASS_NO_TXPORT, frame_len, XDP_PASS);

	/* Committed: from here on the packet is modified and leaves. */
	__builtin_memcpy(p.l2.eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(p.l2.eth->h_source, smac, ETH_ALEN);
	if ((out->flags & XEMS_OUT_F_VLAN) && p.l2.vlan_depth)
		p.l2.inner_vlan->h_vlan_TCI =
			(p.l2.inner_vlan->h_vlan_TCI & bpf_htons(0xf000)) |
			bpf_htons(out->vlan_id & XEMS_VLAN_VID_MASK);
	if (p.v6)
		rewrite_ipv6(p.ip6h, p.udph, out);
	else
		rewrite_ipv4(p.iph, p.udph, out);

	update_flow_stats(val, p.plen, rtcp, &rtp);
	count(XEMS_CNT_FORWARDED, frame_len, 0);
	if (egress == ctx->ingress_ifindex)
		return XDP_TX;
	/* Present a moment ago; if the daemon removed it since, drop: the
	 * packet is already rewritten and must not go up. */
	return bpf_redirect_map(&xems_tx_ports, egress, XDP_DROP);
}
