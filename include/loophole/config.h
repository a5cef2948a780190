/* config.h - one settings snapshot built from embedded defaults, then a config file, then
 * command-line flags. Immutable once the daemon starts. */
#ifndef LH_CONFIG_H
#define LH_CONFIG_H

#include "loophole/log.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>

#define LH_LISTEN_MAX 16
#define LH_DEFAULT_LISTEN "127.0.0.53:53"
#define LH_DEFAULT_HOSTS_FILE "/etc/hosts"
#define LH_ERR_MAX 512

typedef union lh_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    struct sockaddr_storage ss;
} lh_sockaddr;

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

enum lh_block_mode {
    LH_BLOCK_LOOPBACK = 0, /* A 127.0.0.1, AAAA ::1 */
    LH_BLOCK_NULL,         /* A 0.0.0.0, AAAA :: */
    LH_BLOCK_NXDOMAIN,
    LH_BLOCK_NODATA,
    LH_BLOCK_REFUSED,
    LH_BLOCK_CUSTOM, /* block-ipv4 / block-ipv6 */
};

typedef struct lh_config {
    char *config_file; /* NULL: embedded defaults only */

    lh_sockaddr listen[LH_LISTEN_MAX];
    unsigned nlisten;
    enum lh_config_source listen_src;

    enum lh_log_level log_level;
    char *hosts_file;       /* NULL: no hosts file */
    uint16_t edns_udp_size; /* our cap for UDP answers */
    uint32_t local_ttl;     /* TTL of local answers and their negative answers */
    uint32_t tcp_idle_timeout_ms;
    uint32_t tcp_max_connections;

    lh_list_source *lists; /* block and allow lists, in the order given */
    unsigned nlists;
    bool default_blocklist; /* the list built in from blocklists/default.list */
    enum lh_block_mode block_mode;
    uint8_t block_ipv4[4], block_ipv6[16];
    bool has_block_ipv4, has_block_ipv6;
    uint32_t block_ttl;
    bool canary_names; /* use-application-dns.net, mask.icloud.com, resolver.arpa */
} lh_config;

void lh_config_defaults(lh_config *c);
void lh_config_free(lh_config *c);
/* Applies one `key = value` setting. On error returns -1 with a message (no location). */
int lh_config_set(lh_config *c, enum lh_config_source src, const char *key, const char *value,
                  char *err, size_t errlen);
/* Reads a config file; on the first error returns -1 with "file:line: message" in err. */
int lh_config_load_file(lh_config *c, const char *path, char *err, size_t errlen);
/* The same for an open stream; `path` names it in messages. */
int lh_config_load_stream(lh_config *c, FILE *f, const char *path, char *err, size_t errlen);

/* Checks settings that depend on each other (after every source is applied). */
int lh_config_validate(const lh_config *c, char *err, size_t errlen);

/* Parses "ADDR", "ADDR:PORT", "[V6]:PORT" or a bare IPv6 address; `default_port` when none. */
int lh_addr_parse(const char *text, uint16_t default_port, lh_sockaddr *out);
/* Formats as "1.2.3.4:53" or "[::1]:53". */
void lh_addr_format(const lh_sockaddr *a, char *out, size_t cap);

#endif
