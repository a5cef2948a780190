/* update.c - see update.h. A short-lived command, so blocking calls are fine here. */
#include "loophole/update.h"
#include "loophole/lists.h"
#include "loophole/log.h"
#include "loophole/policy.h"
#include "loophole/upstream.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

typedef struct resolve_result {
    char addr[INET6_ADDRSTRLEN];
    bool done;
} resolve_result;

static void on_host(void *arg, int status, int timeouts, struct hostent *h)
{
    (void)timeouts;
    resolve_result *r = arg;
    r->done = true;
    if (status == ARES_SUCCESS && h && h->h_addr_list[0])
        inet_ntop(h->h_addrtype, h->h_addr_list[0], r->addr, sizeof r->addr);
}

/* Resolves `host` through the configured upstreams, IPv4 first: in plain DNS, so through the
 * plain ones only (a DNS over TLS upstream is never asked in plaintext). -2 when every
 * upstream is DNS over TLS. */
static int resolve_host(const lh_config *cfg, const char *host, char *out, size_t outlen)
{
    lh_sockaddr servers[LH_UPSTREAMS_MAX];
    char source[LH_ERR_MAX];
    unsigned n = lh_config_default_upstreams(cfg, servers, LH_UPSTREAMS_MAX, source, sizeof source);
    if (cfg->nupstreams) { /* the configured list: its TLS settings line up with it */
        unsigned plain = 0;
        for (unsigned i = 0; i < n; i++)
            if (!cfg->upstream_tls[i].on) servers[plain++] = servers[i];
        if (n && !plain) return -2;
        n = plain;
    }
    ares_channel ch;
    if (n == 0 || lh_ares_channel_new(&ch, 0, servers, n, cfg->upstream_timeout_ms, 2, NULL, NULL))
        return -1;
    resolve_result r = {0};
    for (int family = AF_INET; !r.addr[0] && family; family = family == AF_INET ? AF_INET6 : 0) {
        r.done = false;
        ares_gethostbyname(ch, host, family, on_host, &r);
        while (!r.done) {
            fd_set rd, wr;
            FD_ZERO(&rd);
            FD_ZERO(&wr);
            int nfds = ares_fds(ch, &rd, &wr);
            struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
            if (select(nfds, &rd, &wr, NULL, tvp) < 0 && errno != EINTR) break;
            ares_process(ch, &rd, &wr);
        }
    }
    ares_destroy(ch);
    if (!r.addr[0]) return -1;
    snprintf(out, outlen, "%s", r.addr);
    return 0;
}

typedef struct transfer {
    char etag[256];
    const char *label;
    bool tty;
} transfer;

static size_t on_header(char *buf, size_t size, size_t n, void *ctx)
{
    transfer *t = ctx;
    size_t len = size * n;
    if (len > 5 && !strncasecmp(buf, "ETag:", 5)) {
        size_t i = 5, j = len;
        while (i < j && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        while (j > i && (buf[j - 1] == '\r' || buf[j - 1] == '\n' || buf[j - 1] == ' '))
            j--;
        if (j - i < sizeof t->etag) {
            memcpy(t->etag, buf + i, j - i);
            t->etag[j - i] = 0;
        }
    }
    return len;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut,
                       curl_off_t un)
{
    (void)ut;
    (void)un;
    transfer *t = ctx;
    if (t->tty && dlnow > 0) {
        if (dltotal > 0)
            fprintf(stderr, "\r  %s: %.1f of %.1f MiB ", t->label, dlnow / 1048576.0,
                    dltotal / 1048576.0);
        else
            fprintf(stderr, "\r  %s: %.1f MiB ", t->label, dlnow / 1048576.0);
    }
    return 0;
}

static int count_rule(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    (void)ctx, (void)r, (void)line, (void)text;
    return 0;
}

/* Sends the URL's host to an address looked up through the upstreams (CURLOPT_RESOLVE), so the
 * updater never asks the machine's resolver, which may be loophole itself. A literal needs
 * nothing. */
static int pin_host(const lh_config *cfg, CURL *c, const char *host, const char *port,
                    struct curl_slist **resolve, char *err, size_t errlen)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) == 1 || host[0] == '[') return 0;
    char addr[INET6_ADDRSTRLEN], entry[512];
    int rr = resolve_host(cfg, host, addr, sizeof addr);
    if (rr == -2) {
        snprintf(err, errlen,
                 "cannot resolve %s: the upstreams are DNS over TLS or HTTPS and the list updater "
                 "resolves in plain DNS only (never sent in plaintext to them); give the "
                 "list URL by IP address",
                 host);
        return -1;
    }
    if (rr != 0) {
        snprintf(err, errlen, "cannot resolve %s through the upstreams", host);
        return -1;
    }
    bool v6 = strchr(addr, ':') != NULL;
    snprintf(entry, sizeof entry, "%s:%s:%s%s%s", host, port, v6 ? "[" : "", addr, v6 ? "]" : "");
    *resolve = curl_slist_append(NULL, entry);
    curl_easy_setopt(c, CURLOPT_RESOLVE, *resolve);
    return 0;
}

/* A conditional request when the file came from this same URL: an unchanged list costs one
 * round trip. A file from another URL (the source changed) is fetched whole. */
static void ask_if_changed(CURL *c, const lh_list_url *u, const char *meta_path,
                           struct curl_slist **headers)
{
    struct stat st;
    FILE *mf = fopen(meta_path, "r");
    char old_url[2100] = "", etag[300] = "", header[320];
    if (mf) {
        if (fgets(old_url, sizeof old_url, mf) && fgets(etag, sizeof etag, mf))
            etag[strcspn(etag, "\n")] = 0;
        old_url[strcspn(old_url, "\n")] = 0;
        fclose(mf);
    }
    if (stat(u->path, &st) != 0 || strcmp(old_url, u->url) != 0) return;
    curl_easy_setopt(c, CURLOPT_TIMECONDITION, (long)CURL_TIMECOND_IFMODSINCE);
    curl_easy_setopt(c, CURLOPT_TIMEVALUE_LARGE, (curl_off_t)st.st_mtime);
    if (etag[0]) {
        snprintf(header, sizeof header, "If-None-Match: %s", etag);
        *headers = curl_slist_append(NULL, header);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    }
}

static void set_transfer(CURL *c, const char *url, FILE *f, transfer *t)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "loophole-lists-update");
}

/* Only a download that reads as a list replaces the old file; it then takes the server's time,
 * so that If-Modified-Since compares like with like, and the URL and ETag are remembered. */
static int install_download(CURL *c, const lh_list_url *u, const char *tmp, const char *meta_path,
                            const transfer *t, char *err, size_t errlen)
{
    lh_list_counts counts;
    FILE *check = fopen(tmp, "r");
    int r = check ? lh_list_read(check, u->url, LH_FMT_AUTO, false, -1, count_rule, NULL, &counts,
                                 true, err, errlen)
                  : -1;
    if (check) fclose(check);
    if (r != 0 || counts.rules == 0) {
        if (r == 0)
            snprintf(err, errlen, "the download holds no list rules (%u lines, %u malformed)",
                     counts.lines, counts.errors);
        return -1;
    }
    if (rename(tmp, u->path) != 0) {
        snprintf(err, errlen, "cannot replace %.300s: %s", u->path, strerror(errno));
        return -1;
    }
    long filetime = -1;
    curl_easy_getinfo(c, CURLINFO_FILETIME, &filetime);
    if (filetime > 0) {
        struct utimbuf ut = {.actime = filetime, .modtime = filetime};
        utime(u->path, &ut);
    }
    FILE *ef = fopen(meta_path, "w");
    if (ef) {
        fprintf(ef, "%s\n%s\n", u->url, t->etag);
        fclose(ef);
    }
    printf("%s: updated (%u rules, %u ignored, %u malformed lines)\n", u->path, counts.rules,
           counts.ignored, counts.errors);
    return 0;
}

/* Updates one list. Prints its outcome; returns 0 on success (including "unchanged"). */
static int update_one(const lh_config *cfg, const lh_list_url *u, bool tty)
{
    char tmp[4096], meta_path[4096], err[LH_ERR_MAX] = "";
    /* Hidden files beside the list, so that a list folder never loads them as lists. */
    const char *slash = strrchr(u->path, '/');
    int dirlen = slash ? (int)(slash - u->path + 1) : 0;
    const char *base = u->path + dirlen;
    snprintf(tmp, sizeof tmp, "%.*s.%s.download", dirlen, u->path, base);
    snprintf(meta_path, sizeof meta_path, "%.*s.%s.meta", dirlen, u->path, base); /* URL, ETag */
    transfer t = {.label = u->path, .tty = tty};
    CURL *c = curl_easy_init();
    CURLU *url = curl_url();
    struct curl_slist *resolve = NULL, *headers = NULL;
    FILE *f = NULL;
    int rc = -1;
    char *host = NULL, *port = NULL;
    if (!c || !url || curl_url_set(url, CURLUPART_URL, u->url, 0) != CURLUE_OK ||
        curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, sizeof err, "'%s' is not a valid URL", u->url);
        goto out;
    }
    if (pin_host(cfg, c, host, port, &resolve, err, sizeof err) != 0) goto out;
    ask_if_changed(c, u, meta_path, &headers);
    if (!(f = fopen(tmp, "w"))) {
        snprintf(err, sizeof err, "cannot write %.300s: %s", tmp, strerror(errno));
        goto out;
    }
    set_transfer(c, u->url, f, &t);
    CURLcode cc = curl_easy_perform(c);
    if (tty) fputs("\r\033[K", stderr);
    if (fclose(f) != 0 && cc == CURLE_OK) cc = CURLE_WRITE_ERROR;
    f = NULL;
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_HTTP_RETURNED_ERROR)
        snprintf(err, sizeof err, "download failed: HTTP %ld", code);
    else if (cc != CURLE_OK)
        snprintf(err, sizeof err, "download failed: %s", curl_easy_strerror(cc));
    else if (code == 304) {
        printf("%s: unchanged (not modified since the last update)\n", u->path);
        rc = 0;
    } else
        rc = install_download(c, u, tmp, meta_path, &t, err, sizeof err);
out:
    if (f) fclose(f);
    unlink(tmp);
    if (rc != 0)
        printf("%s: FAILED, %s; %s\n", u->path, err[0] ? err : "unknown error",
               access(u->path, F_OK) == 0 ? "the old file is kept" : "no file yet");
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(url);
    curl_slist_free_all(resolve);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return rc;
}

int lh_lists_update(const lh_config *cfg)
{
    if (cfg->nlist_urls == 0) {
        fprintf(stderr, "loophole lists update: no list-url in the configuration (list-url = "
                        "URL PATH; see blocklists/SOURCES.md)\n");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    bool tty = isatty(STDERR_FILENO);
    unsigned failed = 0;
    for (unsigned i = 0; i < cfg->nlist_urls; i++)
        failed += update_one(cfg, &cfg->list_urls[i], tty) != 0;
    curl_global_cleanup();
    /* Compile the lists as they are now, so that the daemon's next start or reload maps
     * them instead of parsing them (a no-op without a state directory). */
    if (cfg->state_dir) {
        char err[LH_ERR_MAX];
        lh_policy *p = lh_policy_build(cfg, err, sizeof err);
        if (!p) fprintf(stderr, "loophole lists update: the lists do not load: %s\n", err);
        lh_policy_free(p);
    }
    if (failed)
        printf("%u of %u list(s) failed; send SIGHUP (systemctl reload loophole) to load the "
               "others\n",
               failed, cfg->nlist_urls);
    else
        printf("all %u list(s) up to date; send SIGHUP (systemctl reload loophole) to load them\n",
               cfg->nlist_urls);
    return failed ? 1 : 0;
}
