/* leak.h - the DNS-leak check (`loophole leak-check`, a short-lived client) and the
 * authoritative zone it can probe (`loophole leak-server`). Neither shares state with the
 * resolver; the resolver only knows the canary zone, which it answers itself. */
#ifndef LH_LEAK_H
#define LH_LEAK_H

#include "loophole/canary.h"
#include "loophole/config.h"
#include "loophole/wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* The leak server's zone: answers `<label>.ZONE` with the address of the resolver that asked,
 * remembers per label which resolvers asked (bounded, expiring), and answers
 * `results.<label>.ZONE TXT` with all of them. */
typedef struct lh_leak_zone lh_leak_zone;

lh_leak_zone *lh_leak_zone_new(const lh_config *cfg, char *err, size_t errlen);
void lh_leak_zone_free(lh_leak_zone *z);
/* Answers one parsed query from `peer` into out. Returns the length, or 0 to drop (rate
 * limit). `now_ms` is the loop's clock. */
size_t lh_leak_zone_answer(lh_leak_zone *z, const lh_msg *m, const lh_sockaddr *peer,
                           uint64_t now_ms, uint8_t *out, size_t cap, size_t limit,
                           uint16_t our_udp_size);

/* The leak server's role (`loophole leak-server`): the zone behind the shared listeners
 * (listener.h), stopped by SIGTERM/SIGINT. No policy, no forwarding, no control socket.
 * Start binds (before privileges are dropped); stop is graceful; free after the loop ended. */
typedef struct lh_leak_server lh_leak_server;
lh_leak_server *lh_leak_server_start(uv_loop_t *loop, const lh_config *cfg, lh_leak_zone *zone,
                                     char *err, size_t errlen);
void lh_leak_server_stop(lh_leak_server *s);
void lh_leak_server_free(lh_leak_server *s);

/* Counters of the leak server, for its log line at exit. */
typedef struct lh_leak_stats {
    uint64_t answered, refused, rate_limited, labels_evicted;
} lh_leak_stats;
const lh_leak_stats *lh_leak_zone_stats(const lh_leak_zone *z);

/* `loophole leak-check`: prints the report (human or JSON) on stdout. Returns the exit code:
 * 0 no leak, 1 leak found, 2 could not tell. */
int lh_leak_check(const lh_config *cfg, bool json);

#endif
