/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header-cursor parsing helpers and incremental checksums for the XDP relay
 * (docs/STYLE.md R8, after xdp-tools' headers/xdp/parsing_helpers.h).
 *
 * Every parse_* helper is static __always_inline, checks the header it reads
 * against data_end before touching it, advances the cursor past the header,
 * and returns the next protocol (network order for ethertypes) or -1 if the
 * header is truncated or inconsistent. UAPI headers only: no vmlinux.h, no
 * CO-RE, nothing here depends on kernel-internal layouts.
 */
#ifndef XEMS_BPF_PARSING_H
#define XEMS_BPF_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* At most this many 802.1Q/802.1ad tags are skipped; a frame with more is
 * not IP as far as the program is concerned (passed up as not_udp). A fixed,
 * small bound keeps the loop unrolled and the 6.1 verifier happy. */
#define XEMS_MAX_VLAN_DEPTH 2

#define XEMS_IP_MF 0x2000
#define XEMS_IP_OFFSET 0x1fff
#define XEMS_VLAN_VID_MASK 0x0fff

struct hdr_cursor {
	void *pos;
};

/* <linux/if_vlan.h> is not UAPI; this is its struct vlan_hdr. */
struct xems_vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

struct xems_l2 {
	struct ethhdr *eth;
	struct xems_vlan_hdr *inner_vlan; /* innermost tag, if vlan_depth > 0 */
	__u32 vlan_depth;
};

static __always_inline int proto_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) ||
	       h_proto == bpf_htons(ETH_P_8021AD);
}

/* Ethernet plus up to XEMS_MAX_VLAN_DEPTH tags. Returns the ethertype after
 * the tags (network order), -1 if the frame ends inside these headers. */
static __always_inline int parse_ethhdr_vlan(struct hdr_cursor *nh,
					     void *data_end, struct xems_l2 *l2)
{
	struct ethhdr *eth = nh->pos;
	struct xems_vlan_hdr *vlh;
	__u16 h_proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return -1;
	nh->pos = eth + 1;
	l2->eth = eth;
	h_proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < XEMS_MAX_VLAN_DEPTH; i++) {
		if (!proto_is_vlan(h_proto))
			break;
		vlh = nh->pos;
		if ((void *)(vlh + 1) > data_end)
			return -1;
		h_proto = vlh->h_vlan_encapsulated_proto;
		l2->inner_vlan = vlh;
		l2->vlan_depth++;
		nh->pos = vlh + 1;
	}
	return h_proto;
}

/* The fixed 20-byte IPv4 header. Returns the protocol, -1 if truncated, not
 * version 4 or IHL < 5. Options are not skipped: the caller checks ihl. */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       struct iphdr **iphdr)
{
	struct iphdr *iph = nh->pos;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4 || iph->ihl < 5)
		return -1;
	nh->pos = iph + 1;
	*iphdr = iph;
	return iph->protocol;
}

/* The fixed 40-byte IPv6 header. Returns nexthdr, -1 if truncated or not
 * version 6. Extension headers are not skipped. */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct ipv6hdr **ip6hdr)
{
	struct ipv6hdr *ip6h = nh->pos;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	nh->pos = ip6h + 1;
	*ip6hdr = ip6h;
	return ip6h->nexthdr;
}

/* IPv6 next-header values that are extension headers (RFC 8200 4, RFC 7045). */
static __always_inline int ipv6_is_ext_hdr(__u8 nexthdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_MH:
	case 139: /* HIP */
	case 140: /* Shim6 */
	case 253: /* experimental */
	case 254:
		return 1;
	}
	return 0;
}

/* The UDP header. l3_payload is the IP payload length from the IP header.
 * Returns the UDP length (header included), -1 if the header is truncated or
 * its length field is < 8 or exceeds the IP payload. */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end,
					__u32 l3_payload,
					struct udphdr **udphdr)
{
	struct udphdr *udph = nh->pos;
	__u32 len;

	if ((void *)(udph + 1) > data_end)
		return -1;
	len = bpf_ntohs(udph->len);
	if (len < sizeof(*udph) || len > l3_payload)
		return -1;
	nh->pos = udph + 1;
	*udphdr = udph;
	return len;
}

/*
 * Incremental checksum update (RFC 1624, equation 3: HC' = ~(~HC + ~m + m')).
 * The caller accumulates sum(~m + m') over the changed 16- or 32-bit words in
 * a 64-bit diff (csum_diff32/csum_diff16) and applies it once. One's-complement
 * sums are byte-order independent (RFC 1071 2(B)), so the words are used as
 * they sit in memory, without byte swapping.
 */
static __always_inline __u64 csum_diff32(__u32 from, __u32 to)
{
	return (__u64)(__u32)~from + to;
}

static __always_inline __u64 csum_diff16(__u16 from, __u16 to)
{
	return (__u64)(__u16)~from + to;
}

static __always_inline __u16 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* The new checksum field for old field `check` and accumulated `diff`. */
static __always_inline __u16 csum_apply(__u16 check, __u64 diff)
{
	return (__u16)~csum_fold64((__u64)(__u16)~check + diff);
}

#endif /* XEMS_BPF_PARSING_H */
