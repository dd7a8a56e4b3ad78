/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the XDP relay, BTF-style (docs/STYLE.md R6); keys and values come
 * from include/relay_abi.h, names from its XEMS_MAP_* macros. All four are
 * pinned by name so media keeps flowing across a daemon restart: the loader
 * passes bpf_object_open_opts.pin_root_path (e.g. /sys/fs/bpf/xems/<instance>)
 * and libbpf reuses maps already pinned there, or creates and pins them.
 */
#ifndef XEMS_BPF_XDP_RELAY_MAPS_H
#define XEMS_BPF_XDP_RELAY_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "relay_abi.h"

/* (local address, port, family) -> what to do with packets to that socket.
 * Preallocated: updates never fail for lack of memory once the entry count is
 * below max_entries, and no allocation happens on the update path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XEMS_DEFAULT_MAX_FLOWS);
	__type(key, struct xems_flow_key);
	__type(value, struct xems_flow_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xems_flows SEC(".maps");

/* stats_idx -> per-CPU counters of one flow (daemon-allocated indexes). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XEMS_DEFAULT_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct xems_flow_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xems_flow_stats SEC(".maps");

/* enum xems_counter -> per-CPU packets/bytes: forwarded, each pass-up reason,
 * each drop reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XEMS_CNT_MAX);
	__type(key, __u32);
	__type(value, struct xems_counter_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xems_counters SEC(".maps");

/* ifindex -> device, for XDP_REDIRECT to another interface. The daemon adds
 * every media interface that runs this program (devices without
 * ndo_xdp_xmit, e.g. VLAN devices, must not be added). Keyed by ifindex in a
 * DEVMAP_HASH so large ifindexes need no large array. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XEMS_DEFAULT_MAX_TX_PORTS);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xems_tx_ports SEC(".maps");

#endif /* XEMS_BPF_XDP_RELAY_MAPS_H */
