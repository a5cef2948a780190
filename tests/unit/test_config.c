/* test_config.c - addresses, the config file with file:line errors, flag precedence. */
#include "unit.h"

#include "loophole/config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

void test_config(void)
{
    lh_sockaddr a;
    char s[64];
    CHECK_EQ(lh_addr_parse("127.0.0.53", 53, &a), 0);
    lh_addr_format(&a, s, sizeof s);
    CHECK_STR(s, "127.0.0.53:53");
    CHECK_EQ(lh_addr_parse("[::1]:5353", 53, &a), 0);
    lh_addr_format(&a, s, sizeof s);
    CHECK_STR(s, "[::1]:5353");
    CHECK_EQ(lh_addr_parse("::1", 53, &a), 0);
    CHECK_EQ(a.sa.sa_family, AF_INET6);
    CHECK_EQ(lh_addr_parse("10.0.0.1:0", 53, &a), -1);
    CHECK_EQ(lh_addr_parse("10.0.0.1:70000", 53, &a), -1);
    CHECK_EQ(lh_addr_parse("localhost:53", 53, &a), -1);
    CHECK_EQ(lh_addr_parse("[::1", 53, &a), -1);

    char path[] = "/tmp/lh-unit-config-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[LH_ERR_MAX];
    lh_config c;

    write_file(path, "# comment\n\nlisten = 127.0.0.2:5300\nlisten=[::1]:5300 # inline\n"
                     "log-level = debug\nhosts-file = none\nlocal-ttl = 5\n");
    lh_config_defaults(&c);
    CHECK_EQ(lh_config_load_file(&c, path, err, sizeof err), 0);
    CHECK_EQ(c.nlisten, 2); /* the file replaced the default address */
    CHECK_EQ(c.log_level, LH_LOG_DEBUG);
    CHECK(c.hosts_file == NULL);
    CHECK_EQ(c.local_ttl, 5);
    /* A flag replaces the file's list rather than adding to it. */
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "listen", "127.0.0.9", err, sizeof err), 0);
    CHECK_EQ(c.nlisten, 1);
    lh_config_free(&c);

    write_file(path, "listen = 127.0.0.1\n\nlisten = nonsense\n");
    lh_config_defaults(&c);
    CHECK_EQ(lh_config_load_file(&c, path, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "%s:3: listen: 'nonsense' is not ADDR[:PORT] (IPv6 as [::1]:53)",
             path);
    CHECK_STR(err, want);
    lh_config_free(&c);

    write_file(path, "colour = blue\n");
    lh_config_defaults(&c);
    CHECK_EQ(lh_config_load_file(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: unknown setting 'colour'", path);
    CHECK_STR(err, want);
    lh_config_free(&c);

    write_file(path, "edns-udp-size 1232\n");
    lh_config_defaults(&c);
    CHECK_EQ(lh_config_load_file(&c, path, err, sizeof err), -1);
    CHECK(strstr(err, ":1: expected 'key = value'") != NULL);
    lh_config_free(&c);

    lh_config_defaults(&c);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "edns-udp-size", "511", err, sizeof err), -1);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "local-ttl", "-1", err, sizeof err), -1);
    CHECK_EQ(lh_config_load_file(&c, "/nonexistent/loophole.conf", err, sizeof err), -2);
    CHECK(strstr(err, "cannot open") != NULL);
    lh_config_free(&c);

    /* Where the upstreams come from, as `stats` and `leak-check` report it. */
    lh_sockaddr ups[LH_UPSTREAMS_MAX];
    enum lh_upstream_origin origin;
    char source[LH_ERR_MAX];
    write_file(path, "nameserver 127.0.0.53\nnameserver 192.0.2.1\n");
    lh_config_defaults(&c);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "resolv-conf", path, err, sizeof err), 0);
    CHECK_EQ(lh_config_upstreams(&c, ups, LH_UPSTREAMS_MAX, source, sizeof source, &origin), 1);
    CHECK_EQ(origin, LH_ORIGIN_RESOLV_CONF); /* minus loophole's own 127.0.0.53 */
    CHECK_STR(lh_upstream_origin_names[origin], "resolv.conf");
    CHECK_EQ(lh_config_set(&c, LH_SRC_FILE, "upstream", "192.0.2.2", err, sizeof err), 0);
    lh_config_upstreams(&c, ups, LH_UPSTREAMS_MAX, source, sizeof source, &origin);
    CHECK_EQ(origin, LH_ORIGIN_FILE);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "upstream", "192.0.2.3", err, sizeof err), 0);
    CHECK_EQ(lh_config_upstreams(&c, ups, LH_UPSTREAMS_MAX, source, sizeof source, &origin), 1);
    CHECK_EQ(origin, LH_ORIGIN_FLAG);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FILE, "forward-zone", "corp.test=192.0.2.9", err, sizeof err),
             0);
    CHECK_EQ(c.forward_zones[0].src, LH_SRC_FILE);
    lh_config_free(&c);
    write_file(path, "nameserver 127.0.0.53\n");
    lh_config_defaults(&c);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "resolv-conf", path, err, sizeof err), 0);
    CHECK_EQ(lh_config_upstreams(&c, ups, LH_UPSTREAMS_MAX, source, sizeof source, &origin), 2);
    CHECK_EQ(origin, LH_ORIGIN_FALLBACK);
    lh_config_free(&c);
    unlink(path);
}
