// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * perf_sink: the XDP counting sink of xems-perf (`--sink-mode xdp`), for
 * receive rates a UDP socket cannot take. Not used by xemsd.
 *
 * UDP to the configured sink address:port (Ethernet, up to 2 VLAN tags,
 * IPv4 with options but not fragmented, or IPv6 without extension headers)
 * is counted like xems::perf::Sink counts datagrams on its socket
 * (tools/xems-perf/rtp_sink.cpp), then dropped: the sink's socket never sees
 * it. Everything else (ARP, ND, other ports, fragments) is XDP_PASS.
 *
 * Per probe (RTP v2, CSRCs and a header extension skipped, payload magic
 * "XPRF", run id, stream, sequence, CLOCK_MONOTONIC send time):
 *   1. run id: cfg_run_id, or with 0 the first run id seen (cmpxchg on
 *      locked_run_id); another one is stale;
 *   2. stream >= cfg_streams or seq >= cfg_max_seq: foreign;
 *   3. source check against perf_sink_expected (counted for duplicates too);
 *   4. atomic fetch-or of the sequence bit: already set -> duplicate;
 *   5. under the stream's spin lock (no helper calls inside): received,
 *      reordered (seq below the highest seen), highest, RFC 3550 jitter;
 *   6. one-way latency (bpf_ktime_get_ns() - send time: the same clock when
 *      sender and sink share the host) into the per-CPU histogram.
 * The map layout is in perf_sink.h.
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
#include "perf_sink.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Load-time configuration: skel->rodata, set before load (one load a trial). */
const volatile __u32 cfg_run_id = 0; /* 0: lock onto the first run id seen */
const volatile __u32 cfg_streams = 0;
const volatile __u32 cfg_max_seq = 0;
const volatile __u32 cfg_words = 0; /* words a stream: ceil(max_seq / 64) */
const volatile __u32 cfg_check_source = 0;
const volatile __u32 cfg_port = 0;     /* network order in the low 16 bits */
const volatile __u32 cfg_match_v4 = 0; /* accept IPv4 to cfg_addr4 */
const volatile __u32 cfg_match_v6 = 0; /* accept IPv6 to cfg_addr6 */
const volatile __u32 cfg_any_addr = 0; /* any address of an accepted family */
const volatile __be32 cfg_addr4 = 0;
const volatile __be32 cfg_addr6[4] = {};

/* The run id in effect when cfg_run_id is 0 (set by the first probe). */
__u32 locked_run_id = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} perf_sink_bitmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct perf_sink_stream);
	__uint(max_entries, 1);
} perf_sink_streams SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct perf_sink_source);
	__uint(max_entries, 1);
} perf_sink_expected SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, PERF_SINK_LATENCY_BUCKETS);
} perf_sink_latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, PERF_SINK_CNT_MAX);
} perf_sink_global SEC(".maps");

/* Probe payload offsets after the RTP header (tools/xems-perf/rtp_packet.h). */
#define PROBE_MAGIC 0x58505246 /* "XPRF" */
#define PROBE_LEN 24
#define RTP_FIXED_LEN 12
/* Largest RTP header (CSRCs + extension) the program follows. */
#define RTP_MAX_HDR 1024
/* |D| is clamped so that D << PERF_SINK_JITTER_SHIFT cannot overflow. */
#define JITTER_MAX_NS (1LL << 50)

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&perf_sink_global, &which);

	if (c)
		*c += 1;
}

static __always_inline __u32 load_be32(const __u8 *p)
{
	__u32 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return bpf_ntohl(v);
}

/* floor(log2(v)) for v > 0 */
static __always_inline __u32 ilog2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

/* xems::perf::Sink::latencyBucket() */
static __always_inline __u32 latency_bucket(__u64 us)
{
	__u32 log2, b;

	if (us < 1024)
		return (__u32)us;
	log2 = ilog2_u64(us);
	b = 1024 + (log2 - 10) * 16 + (__u32)((us >> (log2 - 4)) & 0xf);
	if (b >= PERF_SINK_LATENCY_BUCKETS)
		b = PERF_SINK_LATENCY_BUCKETS - 1;
	return b;
}

/* 1 if the source matches the stream's expected one (or there is none). */
static __always_inline int source_ok(__u32 stream, struct iphdr *iph,
				     struct ipv6hdr *ip6h, __be16 sport)
{
	struct perf_sink_source *want;

	want = bpf_map_lookup_elem(&perf_sink_expected, &stream);
	if (!want || want->family == 0) /* none given for this stream */
		return 1;
	if (want->port != sport)
		return 0;
	if (iph)
		return want->family == 4 && want->addr[0] == iph->saddr;
	if (ip6h)
		return want->family == 6 &&
		       want->addr[0] == ip6h->saddr.in6_u.u6_addr32[0] &&
		       want->addr[1] == ip6h->saddr.in6_u.u6_addr32[1] &&
		       want->addr[2] == ip6h->saddr.in6_u.u6_addr32[2] &&
		       want->addr[3] == ip6h->saddr.in6_u.u6_addr32[3];
	return 0;
}

/* Counts one datagram addressed to the sink; the payload is [pl, pl + len). */
static __always_inline void account(void *pl, void *data_end, __u32 len,
				    struct iphdr *iph, struct ipv6hdr *ip6h,
				    __be16 sport)
{
	struct perf_sink_stream *st;
	__u32 off, run_id, want, stream, seq, word_idx, bucket;
	__u64 send_ns, bit, old, now, us, *word, *hist;
	__s64 delay, d;
	__u8 *p = pl;
	__u8 *probe;

	count(PERF_SINK_CNT_DATAGRAMS);

	/* readProbe() in rtp_packet.h */
	if (len < RTP_FIXED_LEN + PROBE_LEN ||
	    (void *)(p + RTP_FIXED_LEN) > data_end || (p[0] & 0xc0) != 0x80) {
		count(PERF_SINK_CNT_FOREIGN);
		return;
	}
	off = RTP_FIXED_LEN + 4 * (p[0] & 0x0f);
	if (p[0] & 0x10) {
		__u8 *ext = p + off;

		if (len < off + 4 || (void *)(ext + 4) > data_end) {
			count(PERF_SINK_CNT_FOREIGN);
			return;
		}
		off += 4 + 4 * (((__u32)ext[2] << 8) | ext[3]);
	}
	if (off > RTP_MAX_HDR || len < off + PROBE_LEN) {
		count(PERF_SINK_CNT_FOREIGN);
		return;
	}
	probe = p + off;
	if ((void *)(probe + PROBE_LEN) > data_end ||
	    load_be32(probe) != PROBE_MAGIC) {
		count(PERF_SINK_CNT_FOREIGN);
		return;
	}
	run_id = load_be32(probe + 4);
	stream = load_be32(probe + 8);
	seq = load_be32(probe + 12);
	send_ns = ((__u64)load_be32(probe + 16) << 32) | load_be32(probe + 20);

	want = cfg_run_id;
	if (want == 0) {
		want = __sync_val_compare_and_swap(&locked_run_id, 0, run_id);
		if (want == 0)
			want = run_id; /* this probe locked it */
	}
	if (run_id != want) {
		count(PERF_SINK_CNT_STALE);
		return;
	}
	if (stream >= cfg_streams || seq >= cfg_max_seq) {
		count(PERF_SINK_CNT_FOREIGN);
		return;
	}
	st = bpf_map_lookup_elem(&perf_sink_streams, &stream);
	word_idx = stream * cfg_words + seq / 64;
	word = bpf_map_lookup_elem(&perf_sink_bitmap, &word_idx);
	if (!st || !word) {
		/* Sized by userspace for streams x words: cannot happen. */
		count(PERF_SINK_CNT_FOREIGN);
		return;
	}
	if (cfg_check_source && !source_ok(stream, iph, ip6h, sport))
		__sync_fetch_and_add(&st->wrong_source, 1);

	bit = 1ULL << (seq % 64);
	old = __sync_fetch_and_or(word, bit);
	if (old & bit) {
		__sync_fetch_and_add(&st->duplicates, 1);
		return;
	}

	/* Helpers before the lock: none may be called while holding it. */
	now = bpf_ktime_get_ns();
	delay = (__s64)(now - send_ns);
	us = delay > 0 ? (__u64)delay / 1000 : 0;
	bucket = latency_bucket(us);
	hist = bpf_map_lookup_elem(&perf_sink_latency, &bucket);
	if (hist)
		*hist += 1;

	bpf_spin_lock(&st->lock);
	st->received += 1;
	if (st->any && seq < st->highest)
		st->reordered += 1;
	if (!st->any || seq > st->highest) {
		st->highest = seq;
		st->any = 1;
	}
	if (st->received > 1) {
		d = delay - st->last_transit_ns;
		if (d < 0)
			d = -d;
		if (d > JITTER_MAX_NS)
			d = JITTER_MAX_NS;
		/* J += (|D| - J) / 16, in ns << PERF_SINK_JITTER_SHIFT */
		d <<= PERF_SINK_JITTER_SHIFT;
		st->jitter_scaled += (d - st->jitter_scaled) >> 4;
	}
	st->last_transit_ns = delay;
	bpf_spin_unlock(&st->lock);
}

SEC("xdp")
int xems_perf_sink(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct xems_l2 l2 = {};
	struct iphdr *iph = NULL;
	struct ipv6hdr *ip6h = NULL;
	struct udphdr *udph;
	__u32 l3_payload, hdr_len;
	int proto, udp_len;

	proto = parse_ethhdr_vlan(&nh, data_end, &l2);
	if (proto == bpf_htons(ETH_P_IP)) {
		if (!cfg_match_v4)
			return XDP_PASS;
		if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP)
			return XDP_PASS;
		if (!cfg_any_addr && iph->daddr != cfg_addr4)
			return XDP_PASS;
		/* Fragments go up: only the kernel can reassemble them. */
		if (iph->frag_off & bpf_htons(XEMS_IP_MF | XEMS_IP_OFFSET))
			return XDP_PASS;
		hdr_len = iph->ihl * 4;
		if (bpf_ntohs(iph->tot_len) < hdr_len)
			return XDP_PASS;
		l3_payload = bpf_ntohs(iph->tot_len) - hdr_len;
		/* Skip options (ihl > 5): parse_iphdr() stopped at 20 bytes. */
		nh.pos = (void *)iph + hdr_len;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (!cfg_match_v6)
			return XDP_PASS;
		if (parse_ip6hdr(&nh, data_end, &ip6h) != IPPROTO_UDP)
			return XDP_PASS;
		if (!cfg_any_addr &&
		    (ip6h->daddr.in6_u.u6_addr32[0] != cfg_addr6[0] ||
		     ip6h->daddr.in6_u.u6_addr32[1] != cfg_addr6[1] ||
		     ip6h->daddr.in6_u.u6_addr32[2] != cfg_addr6[2] ||
		     ip6h->daddr.in6_u.u6_addr32[3] != cfg_addr6[3]))
			return XDP_PASS;
		l3_payload = bpf_ntohs(ip6h->payload_len);
	} else {
		return XDP_PASS;
	}
	udp_len = parse_udphdr(&nh, data_end, l3_payload, &udph);
	if (udp_len < 0 || udph->dest != (__be16)cfg_port)
		return XDP_PASS;

	account(nh.pos, data_end, (__u32)udp_len - sizeof(*udph), iph, ip6h,
		udph->source);
	return XDP_DROP;
}
