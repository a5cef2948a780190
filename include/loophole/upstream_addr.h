/* upstream_addr.h - how an upstream is written in the configuration, whatever its transport:
 * plain "ADDR[:PORT]" (DNS over UDP/TCP, port 53), "tls://ADDR[:PORT]#AUTH-NAME" (DNS over
 * TLS, RFC 7858, port 853) and Unbound's and systemd-resolved's "ADDR@PORT#AUTH-NAME" (DNS over
 * TLS too: the '#' with a name is what asks for TLS there). A TLS upstream may carry an SPKI pin:
 * "tls://ADDR#NAME?pin-sha256=BASE64" (RFC 7469's pin-sha256, the SHA-256 of the server
 * certificate's SubjectPublicKeyInfo), checked in addition to the certificate chain and name.
 *
 * DNS over HTTPS (RFC 8484): "https://HOST[:PORT][/PATH]@ADDR[?OPTIONS]", port 443, path
 * /dns-query by default. ADDR is the address to reach HOST at (bare IPv4, IPv6 bare or in
 * brackets), so that finding the DoH server never takes a plaintext lookup; it may be left out
 * only when HOST is itself an IP literal. OPTIONS, '&'-separated, are loophole's and never sent:
 * pin-sha256=BASE64 and method=get|post (POST by default). */
#ifndef LH_UPSTREAM_ADDR_H
#define LH_UPSTREAM_ADDR_H

#include "loophole/addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LH_DOT_PORT 853
#define LH_AUTH_NAME_MAX 254 /* a host name in text, with its terminating zero */
#define LH_DOH_PORT 443
#define LH_DOH_PATH_MAX 256 /* the path of a DoH URL, with its terminating zero */

/* The TLS side of one configured upstream; `on` false: plain DNS. `https` (with `on`): DNS
 * over HTTPS, auth_name then being the URL's HOST and the address the bootstrap ADDR. */
typedef struct lh_upstream_tls {
    bool on;
    bool https;
    bool doh_get;                   /* GET with ?dns= instead of POST */
    char doh_path[LH_DOH_PATH_MAX]; /* "/dns-query" */
    bool has_pin;
    char auth_name[LH_AUTH_NAME_MAX]; /* checked against the certificate; also sent as SNI
                                         unless it is an IP address */
    uint8_t pin[32];                  /* SHA-256 of the SubjectPublicKeyInfo */
} lh_upstream_tls;

/* Is the authentication name an IPv4 or IPv6 address (checked against the certificate's IP
 * address entries, and sent without SNI)? */
bool lh_auth_name_is_ip(const char *name);

/* Parses one upstream in any of the forms above into its address and TLS settings. Returns 0,
 * or -1 with a message that says what is wrong with `text`. */
int lh_upstream_addr_parse(const char *text, union lh_sockaddr *addr, lh_upstream_tls *tls,
                           char *err, size_t errlen);

/* "tls://192.0.2.1:853" for a TLS upstream, "192.0.2.1:53" for a plain one,
 * "https://dns.example/dns-query" (":PORT" when not 443) for DNS over HTTPS. */
void lh_upstream_addr_format(const union lh_sockaddr *addr, const lh_upstream_tls *tls, char *out,
                             size_t cap);

#endif
