/* test_settings.c - the settings table against the parser, the defaults and the docs:
 * lh_config_set accepts exactly the table's keys; each default in the table, applied to a
 * default configuration, changes nothing (so the table tells the truth); and
 * docs/configuration.md lists every setting with that default and nothing that is not one;
 * docs/loophole.conf.example has a line for each (its default, or commented out). */
#include "unit.h"

#include "loophole/config.h"
#include "loophole/sbuf.h"
#include <stdio.h>

#include <stdlib.h>
#include <string.h>

#define DOCS LH_SOURCE_DIR "/docs/configuration.md"
#define EXAMPLE LH_SOURCE_DIR "/docs/loophole.conf.example"

/* Compares two configurations: strings by value, everything else byte for byte, ignoring
 * where settings came from. */
static bool same_config(const lh_config *x, const lh_config *y)
{
    lh_config a = *x, b = *y;
    char **sa[] = {&a.config_file,    &a.user,          &a.hosts_file, &a.resolv_conf,
                   &a.control_socket, &a.control_group, &a.query_log,  &a.probe_zone,
                   &a.leak_zone,      &a.state_dir,     &a.tls_ca};
    char **sb[] = {&b.config_file,    &b.user,          &b.hosts_file, &b.resolv_conf,
                   &b.control_socket, &b.control_group, &b.query_log,  &b.probe_zone,
                   &b.leak_zone,      &b.state_dir,     &b.tls_ca};
    for (size_t i = 0; i < sizeof sa / sizeof *sa; i++) {
        if ((*sa[i] == NULL) != (*sb[i] == NULL)) return false;
        if (*sa[i] && strcmp(*sa[i], *sb[i])) return false;
        *sa[i] = *sb[i] = NULL;
    }
    if (a.nlists || b.nlists || a.nlist_urls || b.nlist_urls || a.nforward_zones ||
        b.nforward_zones || a.nrebind_allow || b.nrebind_allow || a.ntrust_anchors ||
        b.ntrust_anchors || a.ndomain_insecure || b.ndomain_insecure)
        return false; /* none of these has a default */
    a.lists = b.lists = NULL;
    a.list_urls = b.list_urls = NULL;
    a.forward_zones = b.forward_zones = NULL;
    a.rebind_allow = b.rebind_allow = NULL;
    a.trust_anchors = b.trust_anchors = a.domain_insecure = b.domain_insecure = NULL;
    memset(a.set_src, 0, sizeof a.set_src);
    memset(b.set_src, 0, sizeof b.set_src);
    memset(a.set_line, 0, sizeof a.set_line);
    memset(b.set_line, 0, sizeof b.set_line);
    a.listen_src = b.listen_src = a.upstreams_src = b.upstreams_src = LH_SRC_DEFAULT;
    a.fallback_src = b.fallback_src = a.leak_ns_src = b.leak_ns_src = LH_SRC_DEFAULT;
    /* Named explicitly (must exist) is where a value came from, not the value. */
    a.hosts_file_explicit = b.hosts_file_explicit = false;
    a.resolv_conf_explicit = b.resolv_conf_explicit = false;
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Applies a table default ("A, B" for a list setting: each in turn). */
static int apply_default(lh_config *c, const lh_setting *s, char *err, size_t errlen)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s->def);
    char *save = NULL;
    for (char *v = strtok_r(buf, ", ", &save); v; v = strtok_r(NULL, ", ", &save))
        if (lh_config_set(c, LH_SRC_FLAG, s->key, v, err, errlen) != 0) return -1;
    return 0;
}

/* The backticked items of a table cell, in order: `a`, `b = c` -> "a", "b = c". */
static unsigned ticks(const char *cell, char items[][128], unsigned max)
{
    unsigned n = 0;
    for (const char *p = strchr(cell, '`'); p && n < max; p = strchr(p + 1, '`')) {
        const char *e = strchr(p + 1, '`');
        if (!e) break;
        snprintf(items[n++], 128, "%.*s", (int)(e - p - 1), p + 1);
        p = e;
    }
    return n;
}

/* Does docs/FILE.md have a heading whose GitHub anchor is `anchor` (lowercase; letters,
 * digits, '-' and '_' kept, spaces as '-', the rest dropped)? */
static bool doc_has_anchor(const char *file, const char *anchor)
{
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/%s", LH_SOURCE_DIR, file);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool found = !anchor;
    while (!found && fgets(line, sizeof line, f)) {
        if (line[0] != '#') continue;
        char slug[1024];
        size_t n = 0;
        const char *p = line;
        while (*p == '#')
            p++;
        while (*p == ' ')
            p++;
        for (; *p && *p != '\n'; p++) {
            char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
            if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_')
                slug[n++] = ch;
            else if (ch == ' ')
                slug[n++] = '-';
        }
        slug[n] = 0;
        found = !strcmp(slug, anchor);
    }
    fclose(f);
    return found;
}

/* The table drives the flags and --help: every setting has a flag (unique), help text and a
 * docs page that has its anchor; --help names every flag with its argument. */
static void test_settings_table(void)
{
    static char help[16384];
    lh_sbuf b;
    lh_sbuf_init(&b, help, sizeof help);
    lh_settings_help(&b);
    CHECK(!b.overflow);
    for (unsigned i = 0; i < lh_nsettings; i++) {
        const lh_setting *s = &lh_settings[i];
        CHECK(s->flag && s->help && s->doc);
        if (!s->flag || !s->help || !s->doc) continue;
        CHECK_EQ(lh_setting_flag_index(s->flag), (int)i);
        CHECK((s->flag_value != NULL) != (s->arg != NULL)); /* a flag takes a value or sets one */
        char want[160];
        snprintf(want, sizeof want, " --%s%s%s%s", s->flag, s->arg ? " " : "", s->arg ? s->arg : "",
                 s->arg ? "" : " ");
        if (!strstr(help, want)) fprintf(stderr, "--help lacks '%s'\n", want + 1);
        CHECK(strstr(help, want) != NULL);
        char file[128], *anchor;
        snprintf(file, sizeof file, "%s", s->doc);
        anchor = strchr(file, '#');
        if (anchor) *anchor++ = 0;
        bool ok = doc_has_anchor(file, anchor);
        if (!ok) fprintf(stderr, "%s: %s has no such page or heading\n", s->key, s->doc);
        CHECK(ok);
        if (s->type == LH_SETTING_UINT) CHECK(s->what && s->min <= s->max);
    }
    /* The numbers' bounds hold: one below and one above are refused with the table's words. */
    char err[LH_ERR_MAX], v[32];
    lh_config c;
    lh_config_defaults(&c);
    CHECK(lh_config_set(&c, LH_SRC_FLAG, "edns-udp-size", "511", err, sizeof err) != 0);
    CHECK_STR(err, "edns-udp-size: '511' is not a number from 512 to 4096");
    snprintf(v, sizeof v, "%d", 65);
    CHECK(lh_config_set(&c, LH_SRC_FLAG, "threads", v, err, sizeof err) != 0);
    CHECK_STR(err, "threads: '65' is not a number of event loops from 1 to 64");
    CHECK(lh_config_set(&c, LH_SRC_FLAG, "edns-udp-size", "4096", err, sizeof err) == 0);
    CHECK_EQ(c.edns_udp_size, 4096);
    CHECK(lh_config_set(&c, LH_SRC_FLAG, "recent-queries", "7", err, sizeof err) == 0);
    CHECK_EQ(c.recent_queries, 7);
    CHECK(lh_config_set(&c, LH_SRC_FLAG, "serve-stale", "maybe", err, sizeof err) != 0);
    CHECK_STR(err, "serve-stale: 'maybe' is not yes or no");
    lh_config_free(&c);
}

void test_settings(void)
{
    test_settings_table();
    char err[LH_ERR_MAX];
    lh_config def, c;
    lh_config_defaults(&def);

    /* Only the table's keys exist. */
    lh_config_defaults(&c);
    CHECK(lh_config_set(&c, LH_SRC_FLAG, "no-such-setting", "1", err, sizeof err) != 0);
    CHECK(strstr(err, "unknown setting 'no-such-setting'") != NULL);
    lh_config_free(&c);

    /* Each default tells the truth. */
    for (unsigned i = 0; i < lh_nsettings; i++) {
        const lh_setting *s = &lh_settings[i];
        CHECK_EQ(lh_setting_index(s->key), (int)i);
        if (!s->def) continue;
        lh_config_defaults(&c);
        int rc = apply_default(&c, s, err, sizeof err);
        if (rc != 0) fprintf(stderr, "default of %s: %s\n", s->key, err);
        CHECK_EQ(rc, 0);
        bool same = same_config(&c, &def);
        if (!same) fprintf(stderr, "setting %s = %s changes the defaults\n", s->key, s->def);
        CHECK(same);
        lh_config_free(&c);
    }
    lh_config_free(&def);

    /* The docs: every row of the settings tables ("| key / flag | default | meaning |"). */
    FILE *f = fopen(DOCS, "r");
    CHECK(f != NULL);
    if (!f) return;
    bool listed[LH_SETTINGS_MAX] = {false}, in_table = false;
    char line[4096];
    unsigned rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "| key / flag | default |", 24)) {
            in_table = true;
            continue;
        }
        if (line[0] != '|') in_table = false;
        if (!in_table || !strncmp(line, "|---", 4)) continue;
        /* cells: | keys / flags | default | meaning | */
        char *c1 = line + 1, *c2 = strchr(c1, '|');
        if (!c2) continue;
        *c2++ = 0;
        char *c3 = strchr(c2, '|');
        if (!c3) continue;
        *c3 = 0;
        char *slash = strstr(c1, " / ");
        if (slash) *slash = 0; /* keys left of " / ", flags right of it */
        char keys[8][128], defs[8][128];
        unsigned nk = ticks(c1, keys, 8), nd = ticks(c2, defs, 8);
        unsigned nkeys = 0;
        for (unsigned k = 0; k < nk; k++) {
            if (keys[k][0] == '-') continue; /* a flag-only row (--config, --json) */
            char *eq = strstr(keys[k], " =");
            if (eq) *eq = 0; /* "hosts = no" names the key hosts */
            int idx = lh_setting_index(keys[k]);
            if (idx < 0) fprintf(stderr, "%s lists '%s', which is not a setting\n", DOCS, keys[k]);
            CHECK(idx >= 0);
            if (idx < 0) continue;
            listed[idx] = true;
            nkeys++;
            const char *want = lh_settings[idx].def;
            if (!want) continue;
            /* One key: the whole cell ("`9.9.9.9`, `149.112.112.112`"); several: by position. */
            char got[8 * 130] = "";
            if (nk == 1)
                for (unsigned d = 0; d < nd; d++)
                    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", d ? ", " : "",
                             defs[d]);
            else if (k < nd)
                snprintf(got, sizeof got, "%s", defs[k]);
            if (strcmp(got, want))
                fprintf(stderr, "%s: %s: default [%s], the program's is [%s]\n", DOCS, keys[k], got,
                        want);
            CHECK_STR(got, want);
        }
        rows += nkeys > 0;
    }
    fclose(f);
    CHECK(rows > 40);
    for (unsigned i = 0; i < lh_nsettings; i++) {
        if (!listed[i])
            fprintf(stderr, "%s does not list the setting %s\n", DOCS, lh_settings[i].key);
        CHECK(listed[i]);
    }

    /* The example config: "key = DEFAULT" (each item of a list default on its own line), or a
     * commented "# key = ..." for a setting without one. `hosts` is only a shorthand. */
    f = fopen(EXAMPLE, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    for (unsigned i = 0; i < lh_nsettings; i++) {
        const lh_setting *s = &lh_settings[i];
        if (!strcmp(s->key, "hosts")) continue;
        char want[300];
        if (s->def) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", s->def);
            char *save = NULL;
            for (char *v = strtok_r(buf, ", ", &save); v; v = strtok_r(NULL, ", ", &save)) {
                /* set, or commented out where naming the default changes its meaning (a
                 * hosts-file or resolv-conf named on purpose must exist) */
                char commented[300];
                snprintf(want, sizeof want, "\n%s = %s\n", s->key, v);
                snprintf(commented, sizeof commented, "\n# %s = %s\n", s->key, v);
                bool found = strstr(text, want) || strstr(text, commented);
                if (!found) fprintf(stderr, "%s lacks the line '%s'\n", EXAMPLE, want + 1);
                CHECK(found);
            }
        } else {
            snprintf(want, sizeof want, "\n# %s = ", s->key);
            if (!strstr(text, want))
                fprintf(stderr, "%s lacks a '# %s = ...' line\n", EXAMPLE, s->key);
            CHECK(strstr(text, want) != NULL);
        }
    }
}
