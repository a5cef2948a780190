/* addr.h - socket addresses as loophole writes them ("1.2.3.4:53", "[::1]:53"), and the
 * client ACL: networks (ADDR/PREFIX) allowed to query besides loopback. Pure: no I/O. Most
 * modules need only this, not the whole configuration. */
#ifndef LH_ADDR_H
#define LH_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef union lh_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    struct sockaddr_storage ss;
} lh_sockaddr;

/* Parses "ADDR", "ADDR:PORT", "[V6]:PORT" or a bare IPv6 address; `default_port` when none. */
int lh_addr_parse(const char *text, uint16_t default_port, lh_sockaddr *out);
/* Formats as "1.2.3.4:53" or "[::1]:53". */
void lh_addr_format(const lh_sockaddr *a, char *out, size_t cap);
/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool lh_addr_is_loopback(const struct sockaddr *sa);
/* The address bytes of an IPv4 or IPv6 socket address; returns 4 or 16. */
size_t lh_addr_bytes(const struct sockaddr *sa, const uint8_t **bytes);

/* A client network allowed to query: ADDR/PREFIX. */
typedef struct lh_cidr {
    int family;
    uint8_t addr[16];
    uint8_t prefix;
} lh_cidr;
#define LH_ACL_MAX 64

/* Parses "ADDR[/PREFIX]" (no prefix: the one address). Returns 0 or -1. */
int lh_cidr_parse(const char *v, lh_cidr *out);
/* The client ACL: loopback always, others only inside one of the `n` networks. */
bool lh_acl_allows(const lh_cidr *nets, unsigned n, const struct sockaddr *sa);

#endif
