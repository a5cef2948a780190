/* sockaddr.h - an IPv4 or IPv6 socket address and its text forms: what listeners, upstreams,
 * the client ACL and the configuration share, below all of them. */
#ifndef LH_SOCKADDR_H
#define LH_SOCKADDR_H

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
/* 127.0.0.0/8, ::1 and IPv4-mapped 127/8. */
bool lh_addr_is_loopback(const struct sockaddr *sa);
/* The address bytes of an IPv4 or IPv6 socket address; returns 4 or 16. */
size_t lh_addr_bytes(const struct sockaddr *sa, const uint8_t **bytes);

#endif
