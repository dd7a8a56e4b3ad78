// libbpf's messages in our logger (docs/STYLE.md R15).
#pragma once

namespace xems::datapath::bpf {

/// Routes libbpf_set_print() into the "bpf" log subsystem, one level lower than libbpf's own:
/// libbpf warns about things that are routine for us (feature probes that fail on older kernels,
/// a pinned map being reused), so LIBBPF_WARN -> info, LIBBPF_INFO -> debug,
/// LIBBPF_DEBUG -> trace (verifier logs included). Idempotent; call once at startup.
void installLibbpfLogger();

}  // namespace xems::datapath::bpf
