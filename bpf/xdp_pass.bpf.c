// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_pass: passes every frame to the stack. Test topologies attach it to the
 * peer end of a veth whose other end redirects XDP frames into it (a veth
 * receives XDP_REDIRECTed frames only with NAPI, i.e. an XDP program or GRO,
 * on the receiving side), and the fallback test uses it to occupy a device.
 * It is not used in production.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xems_xdp_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}
