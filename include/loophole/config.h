/* config.h - one settings snapshot built from embedded defaults, then a config file, then
 * command-line flags. Immutable once the daemon starts. */
#ifndef LH_CONFIG_H
#define LH_CONFIG_H

#include "loophole/addr.h"
#include "loophole/log.h"
#include "loophole/addr.h"
#include "loophole/upstream_addr.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>

#define LH_VERSION "0.1.0"
#define LH_LISTEN_MAX 16
#define LH_DEFAULT_LISTEN "127.0.0.53:53"
#define LH_DEFAULT_HOSTS_FILE "/etc/hosts"
#define LH_DEFAULT_USER "nobody"
#define LH_DEFAULT_CONTROL_SOCKET "/run/loophole/control.sock"
#define LH_DEFAULT_STATE_DIR "/var/lib/loophole"
#define LH_DEFAULT_HTTP_PORT 5380
#define LH_ERR_MAX 512

/* Where a setting came from: a later source replaces a list set by an earlier one instead of
 * appending to it (a --listen flag replaces the file's listen lines). */
enum lh_config_source { LH_SRC_DEFAULT = 0, LH_SRC_FILE, LH_SRC_FLAG };

/* A block or allow list named in the config: a file or a folder of list files. */
typedef struct lh_list_source {
    char *path;
    bool allow;
    int format;     /* enum lh_list_format; LH_FMT_AUTO (0) detects per line */
    int subdomains; /* -1: as the format says; 0: the name only; 1: the name and below */
} lh_list_source;

/* list-url = URL PATH: where `loophole lists update` downloads a list to. */
typedef struct lh_list_url {
    char *url, *path;
} lh_list_url;

enum lh_block_mode {
    LH_BLOCK_LOOPBACK = 0, /* A 127.0.0.1, AAAA ::1 */
    LH_BLOCK_NULL,         /* A 0.0.0.0, AAAA :: */
    LH_BLOCK_NXDOMAIN,
    LH_BLOCK_NODATA,
    LH_BLOCK_REFUSED,
    LH_BLOCK_CUSTOM, /* block-ipv4 / block-ipv6 */
};

#define LH_UPSTREAMS_MAX 16
#define LH_ZONE_SERVERS_MAX 8
#define LH_DEFAULT_RESOLV_CONF "/etc/resolv.conf"
#define LH_DEFAULT_FALLBACK "9.9.9.9, 149.112.112.112"

/* --forward-zone ZONE=ADDR[,ADDR...]: the zone and everything below it go to these servers. */
typedef struct lh_forward_zone {
    char *zone; /* as written, for messages */
    lh_sockaddr servers[LH_ZONE_SERVERS_MAX];
    lh_upstream_tls tls[LH_ZONE_SERVERS_MAX]; /* each server's transport (upstream_addr.h) */
    unsigned nservers;
    enum lh_config_source src;
} lh_forward_zone;

/* Where the running daemon's upstreams came from, as `loophole stats` and the leak check say:
 * the upstream flag, the config file, resolv.conf's nameservers, or the fallback. */
enum lh_upstream_origin {
    LH_ORIGIN_FLAG = 0,
    LH_ORIGIN_FILE,
    LH_ORIGIN_RESOLV_CONF,
    LH_ORIGIN_FALLBACK,
    LH_ORIGIN_COUNT
};
/* "flag", "config-file", "resolv.conf", "fallback" */
extern const char *const lh_upstream_origin_names[LH_ORIGIN_COUNT];
/* The origin of a setting given by `src` (a flag, else the config file). */
static inline enum lh_upstream_origin lh_origin_of(enum lh_config_source src)
{
    return src == LH_SRC_FLAG ? LH_ORIGIN_FLAG : LH_ORIGIN_FILE;
}

/* dnssec = off | process | validate | allow-downgrade (docs/dnssec.md) */
enum lh_dnssec_mode {
    LH_DNSSEC_MODE_OFF = 0,  /* relay answers, clear AD */
    LH_DNSSEC_MODE_PROCESS,  /* relay answers; AD only from trusted upstreams (the default) */
    LH_DNSSEC_MODE_VALIDATE, /* loophole validates with its trust anchors */
    /* validate, but on a path found stripping DNSSEC, answers missing their signatures are
     * relayed as insecure - except for zones seen signed, which stay bogus */
    LH_DNSSEC_MODE_DOWNGRADE,
};

/* Every setting (config-file key), with its default as docs/configuration.md shows it (NULL:
 * none to show). lh_config_set accepts exactly these keys; a unit test checks the docs against
 * this table. */
typedef struct lh_config lh_config;
typedef struct lh_setting lh_setting;
typedef struct lh_sbuf lh_sbuf;
enum lh_setting_type {
    LH_SETTING_UINT, /* a number in [min, max] stored in the field at `off` (`size` bytes) */
    LH_SETTING_BOOL, /* yes/no (also true/false, on/off, 1/0) stored in the bool at `off` */
    LH_SETTING_FN,   /* anything else: `set` parses and stores it */
};
typedef int (*lh_setting_fn)(lh_config *c, const lh_setting *s, enum lh_config_source src,
                             const char *value, char *err, size_t errlen);
struct lh_setting {
    const char *key;
    const char *def; /* the default as the file would write it; NULL: none to show */
    enum lh_setting_type type;
    size_t off, size;       /* the field (UINT, BOOL, and FN setters of one string field) */
    unsigned long min, max; /* UINT bounds */
    const char *what;       /* what a valid value is, for errors: "a number from 1 to 64" */
    lh_setting_fn set;      /* FN */
    const char *flag;       /* the command-line flag without "--"; NULL: none */
    const char *flag_value; /* a flag without argument sets this value ("no-hosts": "no") */
    const char *arg;        /* the flag's argument in --help ("FILE"); NULL: none */
    const char *section;    /* --help: a heading before this setting's flag */
    const char *help;       /* --help text, wrapped when printed */
    const char *doc;        /* where the docs explain it: "docs/FILE.md#anchor" */
};
#define LH_SETTINGS_MAX 64
extern const lh_setting lh_settings[];
extern const unsigned lh_nsettings;
/* The index of `key` in lh_settings, or -1. */
int lh_setting_index(const char *key);
/* The index of the setting whose flag is `flag` (without "--"), or -1. */
int lh_setting_flag_index(const char *flag);
/* The flags of every setting as `--help` shows them, in table order, under their sections. */
void lh_settings_help(lh_sbuf *b);

struct lh_config {
    char *config_file; /* NULL: embedded defaults only */
    /* Where each setting (by lh_settings index) was last set: its source, and the line for a
     * file, so that an error involving two settings names the file:line of each. */
    uint8_t set_src[LH_SETTINGS_MAX];
    uint16_t set_line[LH_SETTINGS_MAX];

    lh_sockaddr listen[LH_LISTEN_MAX];
    unsigned nlisten;
    enum lh_config_source listen_src;

    enum lh_log_level log_level;
    char *user;               /* started as root: switch to this user after binding */
    bool allow_root;          /* keep running as root (the user is not switched to) */
    char *hosts_file;         /* NULL: no hosts file */
    bool hosts_file_explicit; /* named by hosts-file: must exist (the default may be missing) */
    uint16_t edns_udp_size;   /* our cap for UDP answers */
    uint32_t local_ttl;       /* TTL of local answers and their negative answers */
    uint32_t tcp_idle_timeout_ms;
    uint32_t tcp_max_connections;
    uint32_t threads;    /* event loops, each on its own thread (SO_REUSEPORT) */
    uint32_t rate_limit; /* UDP answers a second per non-loopback client network (leak-server:
                            per source address); 0: off */
    lh_cidr allow_clients[LH_ACL_MAX]; /* besides loopback, which is always allowed */
    unsigned nallow_clients;

    lh_list_source *lists; /* block and allow lists, in the order given */
    unsigned nlists;
    bool default_blocklist; /* the list built in from blocklists/default.list */
    lh_list_url *list_urls;
    unsigned nlist_urls;
    enum lh_block_mode block_mode;
    uint8_t block_ipv4[4], block_ipv6[16];
    bool has_block_ipv4, has_block_ipv6;
    uint32_t block_ttl;
    bool canary_names; /* use-application-dns.net, mask.icloud.com, resolver.arpa */

    /* Forwarding */
    lh_sockaddr upstreams[LH_UPSTREAMS_MAX];        /* none: from resolv_conf, else the fallback */
    lh_upstream_tls upstream_tls[LH_UPSTREAMS_MAX]; /* each upstream's transport */
    unsigned nupstreams;
    char *tls_ca; /* DNS over TLS: trust this CA file instead of the system store; NULL: system */
    /* tls-mode (RFC 8310 usage profiles): false, strict: an encrypted upstream that fails gives
     * SERVFAIL; true, opportunistic: its failed try is repeated in plain DNS to the same address
     * (port 53), and every report calls the upstream not private. */
    bool tls_opportunistic;
    enum lh_config_source upstreams_src;
    lh_sockaddr fallback[LH_UPSTREAMS_MAX];
    unsigned nfallback;
    enum lh_config_source fallback_src;
    char *resolv_conf;
    bool resolv_conf_explicit; /* named by resolv-conf: must be readable when it is used */
    lh_forward_zone *forward_zones;
    unsigned nforward_zones;
    uint32_t upstream_timeout_ms; /* one try at one server */
    uint32_t query_budget_ms;     /* all tries: then SERVFAIL (or a stale answer) */
    uint32_t doh_idle_timeout_ms; /* nothing in flight this long: DoH connections closed */
    uint32_t upstream_max_inflight;
    bool upstream_0x20;
    bool rebind_protection; /* refuse private addresses for names outside forward zones */
    char **rebind_allow;    /* domains (and below) exempt from it */
    unsigned nrebind_allow;

    /* Cache */
    size_t cache_size; /* bytes; 0 turns the cache off */
    uint32_t cache_min_ttl, cache_max_ttl, cache_max_negative_ttl;
    bool serve_stale;
    uint32_t stale_ttl, stale_window;

    /* Observability */
    char *control_socket; /* NULL: none */
    char *state_dir;      /* the compiled list snapshot and runtime.list live here; NULL: none */
    char *control_group;  /* NULL: root only */
    lh_sockaddr metrics;  /* Prometheus endpoint; has_metrics false: off */
    bool has_metrics;
    char *query_log;       /* path or "stdout"; NULL: off */
    int query_log_clients; /* enum lh_qlog_clients */

    /* DNSSEC (dnssec_config.c) */
    enum lh_dnssec_mode dnssec;
    char **trust_anchors; /* files of DS/DNSKEY records; none: LH_DNSSEC_ROOT_KEY */
    unsigned ntrust_anchors;
    enum lh_config_source trust_anchors_src;
    char **domain_insecure; /* negative trust anchors */
    unsigned ndomain_insecure;

    /* Leak check and leak server */
    char *probe_zone;       /* leak-check: a leak-server zone to probe too */
    bool leak_server;       /* running `leak-server`: authoritative, answers every client */
    char *leak_zone;        /* leak-server: the zone served */
    lh_sockaddr leak_ns[2]; /* leak-server: addresses of ns1.<zone> */
    unsigned nleak_ns;
    enum lh_config_source leak_ns_src;
    uint32_t leak_retention; /* leak-server: seconds a label's resolvers are remembered */

    /* Runtime control and the dashboard (runtime.h, dashboard.h) */
    lh_sockaddr http; /* the dashboard; has_http false: off */
    bool has_http;
    int recent_queries; /* queries kept per loop for tail/dashboard; -1: 1000 with http, else 0 */
};

void lh_config_defaults(lh_config *c);
void lh_config_free(lh_config *c);
/* Applies one `key = value` setting. On error returns -1 with a message (no location). */
int lh_config_set(lh_config *c, enum lh_config_source src, const char *key, const char *value,
                  char *err, size_t errlen);
/* Reads a config file; on the first error returns -1 with "file:line: message" in err, or -2
 * when the file cannot be opened at all. */
int lh_config_load_file(lh_config *c, const char *path, char *err, size_t errlen);
/* The same for an open stream; `path` names it in messages. */
int lh_config_load_stream(lh_config *c, FILE *f, const char *path, char *err, size_t errlen);

/* The DNSSEC keys (dnssec, trust-anchor, domain-insecure): lh_config_set hands them over. */
bool lh_config_is_dnssec_key(const char *key);
int lh_config_set_dnssec(lh_config *c, enum lh_config_source src, const char *key,
                         const char *value, char *err, size_t errlen);
void lh_config_free_dnssec(lh_config *c);

/* Checks settings that depend on each other (after every source is applied). The message
 * starts with where the first setting was given ("file:line: ", "--flag: " or nothing for a
 * default) and names where the other one was. */
int lh_config_validate(const lh_config *c, char *err, size_t errlen);

/* The upstreams used when none is configured: the nameservers of resolv_conf minus loophole's
 * own listen addresses, or else the fallback. Writes up to `max` into out and says where they
 * came from in `source`; returns how many (0 only if the fallback is empty too). Reads a file:
 * call it at start-up, not on the event loop. */
unsigned lh_config_default_upstreams(const lh_config *c, lh_sockaddr *out, unsigned max,
                                     char *source, size_t source_len);
/* The same, also saying which of the four origins the upstreams came from. */
unsigned lh_config_upstreams(const lh_config *c, lh_sockaddr *out, unsigned max, char *source,
                             size_t source_len, enum lh_upstream_origin *origin);
/* May this client query? Loopback always; others only inside an allow-client network. */
bool lh_config_client_allowed(const lh_config *c, const struct sockaddr *sa);

/* Is `a` one of loophole's own listen addresses (same address and port)? */
bool lh_config_is_own_address(const lh_config *c, const lh_sockaddr *a);

#endif
