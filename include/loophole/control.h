/* control.h - the control socket: a unix stream socket (mode 0660, root and control-group
 * only; peers are checked again with SO_PEERCRED) through which `loophole stats`, `reload`,
 * `cache flush` and `lists` talk to the running daemon, and `leak-check` asks it what it listens
 * on and forwards to (`config`). One request line per connection; the
 * answer is a status line ("ok" or "error") followed by text, then the daemon closes. */
#ifndef LH_CONTROL_H
#define LH_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct lh_admin lh_admin;
typedef struct lh_control lh_control;

/* Creates the socket (and its directory) before privileges are dropped. */
lh_control *lh_control_start(lh_admin *a, char *err, size_t errlen);
/* Stops accepting, answers waiting requests with an error and removes the socket file. */
void lh_control_stop(lh_control *c);
/* A reload finished: answers the `reload` requests waiting for it. */
void lh_control_reload_done(lh_control *c, bool ok, const char *message);

/* The client side: sends `command` to the daemon at `path`, prints the answer (stdout, or
 * stderr for errors). Returns the exit code: 0 ok, 1 the daemon reported an error, 2 no
 * daemon to talk to. */
int lh_control_call(const char *path, const char *command);
/* The same without printing: *body (malloc'd, the caller frees it) gets the answer's text and
 * *ok its status. Returns 0, or 2 (no daemon to talk to, already said on stderr). */
int lh_control_fetch(const char *path, const char *command, char **body, bool *ok);

#endif
