/* log.c - leveled messages on stderr (journald adds time stamps when run as a service). */
#include "loophole/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum lh_log_level lh_log_threshold = LH_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int lh_log_level_parse(const char *s, enum lh_log_level *out)
{
    for (unsigned i = 0; i < sizeof level_names / sizeof *level_names; i++) {
        if (!strcmp(s, level_names[i])) {
            *out = (enum lh_log_level)i;
            return 0;
        }
    }
    if (!strcmp(s, "warning")) {
        *out = LH_LOG_WARN;
        return 0;
    }
    return -1;
}

void lh_log(enum lh_log_level level, const char *fmt, ...)
{
    if (level > lh_log_threshold) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    fprintf(stderr, "loophole: %s: %s\n", level_names[level], buf);
}
