/* querylog.h - the JSON-lines query log. Lines are built into memory and written by libuv's
 * thread pool (uv_fs_write), two buffers in turn: the loop never waits for the disk. When both
 * buffers are full, lines are dropped and counted rather than block. */
#ifndef LH_QUERYLOG_H
#define LH_QUERYLOG_H

#include "loophole/stats.h"

#include <uv.h>

typedef struct lh_qlog lh_qlog;

enum lh_qlog_clients {
    LH_QLOG_CLIENT_ADDRESS = 0, /* the client's address */
    LH_QLOG_CLIENT_NONE,        /* no client field */
    LH_QLOG_CLIENT_HASH,        /* a keyed hash: the same client, the same value, this run */
};

/* Opens `path` for appending ("stdout" for standard output). NULL with err on failure. */
lh_qlog *lh_qlog_open(uv_loop_t *loop, const char *path, enum lh_qlog_clients clients, char *err,
                      size_t errlen);
/* One line for an answered query. */
void lh_qlog_write(lh_qlog *l, const lh_query_end *q);
/* Reopens the file (after logrotate moved it); on failure keeps the old one and logs why. */
void lh_qlog_reopen(lh_qlog *l);
/* Writes what is buffered, closes the file and frees the log once the last write is done. */
void lh_qlog_close(lh_qlog *l);
/* Lines dropped because the disk did not keep up. */
uint64_t lh_qlog_dropped(const lh_qlog *l);

#endif
