// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_redirect_min: the baseline for the per-packet cost of xdp_relay
 * (perf/bench_xdp.cpp). It does the least any XDP forwarder must do, and
 * nothing else:
 *
 *   1. check that the frame holds an Ethernet header (else XDP_PASS);
 *   2. write the destination and source MACs (from rodata);
 *   3. XDP_TX if the egress device is the ingress device, else
 *      bpf_redirect_map() into its own DEVMAP_HASH (fallback XDP_DROP).
 *
 * No IP/UDP parsing, no lookup, no source or RTP check, no checksum, no TTL,
 * no counters. It is not used in production.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 cfg_egress_ifindex = 0;
const volatile __u8 cfg_src_mac[ETH_ALEN] = {};
const volatile __u8 cfg_dst_mac[ETH_ALEN] = {};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} min_tx_ports SEC(".maps");

SEC("xdp")
int xems_xdp_redirect_min(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, (const void *)cfg_dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, (const void *)cfg_src_mac, ETH_ALEN);
	if (cfg_egress_ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect_map(&min_tx_ports, cfg_egress_ifindex, XDP_DROP);
}
