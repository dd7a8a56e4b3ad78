/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * perf_sink: the map layout shared by bpf/perf_sink.bpf.c and xems-perf's
 * XDP sink (tools/xems-perf/xdp_sink.cpp). UAPI types only, so that C (BPF)
 * and C++ agree.
 *
 * Maps (array sizes are set by userspace before load, one load per trial):
 *   perf_sink_bitmap   ARRAY, streams * cfg_words __u64: bit seq % 64 of word
 *                      stream * cfg_words + seq / 64 is set (atomic
 *                      fetch-or) when the sequence first arrives
 *   perf_sink_streams  ARRAY, streams struct perf_sink_stream
 *   perf_sink_expected ARRAY, streams struct perf_sink_source (source check)
 *   perf_sink_latency  PERCPU_ARRAY, PERF_SINK_LATENCY_BUCKETS __u64
 *   perf_sink_global   PERCPU_ARRAY, PERF_SINK_CNT_MAX __u64
 */
#ifndef XEMS_BPF_PERF_SINK_H
#define XEMS_BPF_PERF_SINK_H

#include <linux/bpf.h>
#include <linux/types.h>

/* As xems::perf::Sink: 1 us buckets below 1024 us, then 16 sub-buckets per
 * power of two; the last bucket also holds everything above. */
#define PERF_SINK_LATENCY_BUCKETS (1024 + 32 * 16)

/* The jitter estimate is kept in ns << PERF_SINK_JITTER_SHIFT (integers). */
#define PERF_SINK_JITTER_SHIFT 8

enum perf_sink_counter {
	PERF_SINK_CNT_DATAGRAMS = 0, /* UDP to the sink address:port */
	PERF_SINK_CNT_FOREIGN, /* not a probe, unknown stream, seq >= max_seq */
	PERF_SINK_CNT_STALE,   /* a probe of another run id */
	PERF_SINK_CNT_MAX,
};

struct perf_sink_stream {
	/* guards highest, any, received, reordered, the jitter fields */
	struct bpf_spin_lock lock;
	__u32 highest;
	__u32 any;
	__u32 pad;
	__u64 received;     /* unique */
	__u64 reordered;    /* below the highest sequence seen */
	__u64 duplicates;   /* atomic add, outside the lock */
	__u64 wrong_source; /* atomic add, outside the lock */
	__s64 last_transit_ns;
	__s64 jitter_scaled; /* RFC 3550 J in ns << PERF_SINK_JITTER_SHIFT */
};

/* family 4: addr[0] is the IPv4 address; 6: all 16 bytes; 0: no check.
 * Network order. */
struct perf_sink_source {
	__u8 family;
	__u8 pad;
	__be16 port;
	__be32 addr[4];
};

#endif /* XEMS_BPF_PERF_SINK_H */
