// CPU time of the relay under test and kernel backlog drops, read from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace xems::perf {

// utime + stime of every thread of `pid` (live and exited), in ns, from /proc/PID/stat.
// The kernel accounts in clock ticks (usually 10 ms), so use windows of seconds.
std::optional<uint64_t> processCpuNs(pid_t pid);

// Busy time of the whole host (user + nice + system + irq + softirq + steal over all CPUs) from
// /proc/stat, in ns. Minus the relay's and our own CPU time it tells how much other work ran.
std::optional<uint64_t> hostBusyNs();

// Sum over CPUs of the "dropped" column of /proc/net/softnet_stat (per-CPU input backlog full).
// Host-wide, not per namespace: a non-zero delta means the harness host itself dropped packets.
std::optional<uint64_t> softnetDrops();

// Sum of the "drops" column of /proc/PID/net/udp and udp6: datagrams the kernel dropped because
// a UDP socket's receive buffer was full, over every socket of PID's network namespace (the
// relay's own namespace in the harness), i.e. loss at the relay's input.
std::optional<uint64_t> udpSocketDrops(pid_t pid);

}  // namespace xems::perf
