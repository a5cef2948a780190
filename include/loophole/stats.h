/* stats.h - plain per-loop counters, bumped on the query path without locks. */
#ifndef LH_STATS_H
#define LH_STATS_H

#include <stdint.h>

typedef struct lh_stats {
    uint64_t queries_udp, queries_tcp;
    uint64_t dropped; /* too short, responses, oversized datagrams */
    uint64_t formerr, notimp, badvers;
    uint64_t local, refused, forwarded, servfail;
    uint64_t refused_acl; /* clients outside loopback and allow-client */
    uint64_t send_errors; /* answers the kernel would not take */
    uint64_t tcp_accepted, tcp_rejected, tcp_idle_closed, tcp_oversize;
} lh_stats;

#endif
