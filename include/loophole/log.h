/* log.h - leveled logging to stderr. Library code returns errors; callers log once. */
#ifndef LH_LOG_H
#define LH_LOG_H

enum lh_log_level { LH_LOG_ERROR = 0, LH_LOG_WARN, LH_LOG_INFO, LH_LOG_DEBUG };

/* The one mutable global besides counters: set once at start-up from the config. */
extern enum lh_log_level lh_log_threshold;

int lh_log_level_parse(const char *s, enum lh_log_level *out);
void lh_log(enum lh_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lh_err(...) lh_log(LH_LOG_ERROR, __VA_ARGS__)
#define lh_warn(...) lh_log(LH_LOG_WARN, __VA_ARGS__)
#define lh_info(...) lh_log(LH_LOG_INFO, __VA_ARGS__)
#define lh_debug(...)                                                                              \
    do {                                                                                           \
        if (lh_log_threshold >= LH_LOG_DEBUG) lh_log(LH_LOG_DEBUG, __VA_ARGS__);                   \
    } while (0)

#endif
