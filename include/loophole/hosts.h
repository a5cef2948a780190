/* hosts.h - a hosts file (/etc/hosts format) compiled for lookups: name -> addresses, and
 * address -> first name for PTR, as systemd-resolved answers them. */
#ifndef LH_HOSTS_H
#define LH_HOSTS_H

#include "loophole/nameset.h"

#include <stdio.h>

typedef struct lh_hosts_entry {
    uint32_t name_off;       /* wire name in `names` */
    uint32_t v4_off, v6_off; /* first address in addrs4 / addrs6 (in addresses) */
    uint16_t n4, n6;
} lh_hosts_entry;

typedef struct lh_hosts {
    lh_nameset by_name;    /* name -> entry index */
    lh_nameset by_address; /* reverse (in-addr.arpa / ip6.arpa) name -> entry index */
    lh_hosts_entry *entries;
    size_t nentries;
    uint8_t *addrs4, *addrs6; /* 4- and 16-byte addresses, grouped per entry */
    uint8_t *names;           /* wire names of the entries */
    size_t names_len;
    unsigned skipped; /* lines with errors, reported and skipped */
} lh_hosts;

/* Reads a hosts file. Returns 0; -ENOENT with a message in err when the file does not exist;
 * or -1 with a message when it cannot be read otherwise.
 * Bad lines are logged as "file:line: reason" and skipped. Names in the localhost zone are
 * ignored: loophole answers those itself. */
int lh_hosts_load(lh_hosts *h, const char *path, char *err, size_t errlen);
/* The same for an open stream; `path` names it in messages. */
int lh_hosts_load_stream(lh_hosts *h, FILE *f, const char *path, char *err, size_t errlen);
void lh_hosts_free(lh_hosts *h);

/* Builds the reverse-lookup name (d.c.b.a.in-addr.arpa or the ip6.arpa nibble name). */
int lh_reverse_name(int family, const uint8_t *addr, lh_name *out);

#endif
