/* main.c - the loophole command: subcommands and flags. Logic lives in the library. */
#include "loophole/config.h"
#include "loophole/control.h"
#include "loophole/dnssec_config.h"
#include "loophole/dnssec_trace.h"
#include "loophole/leak.h"
#include "loophole/log.h"
#include "loophole/overlay.h"
#include "loophole/policy.h"
#include "loophole/daemon.h"
#include "loophole/sbuf.h"
#include "loophole/server.h"
#include "loophole/update.h"
#include "loophole/why.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <ldns/ldns.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: loophole [serve] [OPTIONS]\n"
    "       loophole check-config [--config FILE] [OPTIONS]\n"
    "       loophole why NAME [TYPE] [--answer FILE | --lookup] [--config FILE] [OPTIONS]\n"
    "       loophole dnssec NAME [TYPE] [--upstream ADDR] [--trust-anchor FILE] [OPTIONS]\n"
    "       loophole health [--config FILE] [--listen ADDR[:PORT]]\n"
    "       loophole lists update [--config FILE]\n"
    "       loophole stats [--json] | reload | cache flush | lists [--json]\n"
    "       loophole pause [DURATION] | resume | tail [--blocked] | dashboard\n"
    "       loophole allow|block NAME [--subdomains] | unlist NAME\n"
    "       loophole leak-check [--json] [--probe-zone ZONE] [--config FILE] [OPTIONS]\n"
    "       loophole leak-server --zone ZONE --listen ADDR[:PORT] [--ns-address ADDR]\n"
    "       loophole --help | --version\n"
    "\n"
    "A local sinkhole DNS resolver. 'serve' (the default) answers DNS over UDP and TCP in the\n"
    "foreground, logging to stderr. 'check-config' validates the configuration and the files it\n"
    "names (STATE-DIR/runtime.list included), printing file:line: message for the first error.\n"
    "'why' tells, without a running daemon, how NAME would be answered with this configuration\n"
    "and which list rules (file:line) match it; with --answer FILE (an upstream answer as dig\n"
    "prints it) or --lookup (asked of the upstream now) also what the checks on upstream\n"
    "answers make of it: a blocked CNAME/SVCB target (uncloaking) or a private address\n"
    "(rebinding protection). 'dnssec' asks the upstream for NAME (DO+CD) and validates the\n"
    "answer itself, printing the chain trust anchor -> DS -> DNSKEY -> RRSIG and the verdict;\n"
    "exit 0 secure, 1 bogus, 2 indeterminate or error, 3 insecure (docs/dnssec.md). 'health'\n"
    "asks the running daemon (at the first listen address) for localhost and exits 0 only when\n"
    "it answers 127.0.0.1 within two seconds. 'lists update'\n"
    "downloads every list-url (conditional requests, atomic replace, old file kept on failure).\n"
    "'stats', 'reload', 'cache flush' and 'lists' talk to the running daemon through its\n"
    "control socket (exit 0 ok, 1 the daemon reported an error, 2 no daemon reachable), as do\n"
    "the runtime commands: 'pause' turns blocking off for DURATION (30s, 5m, 1h; default 5m;\n"
    "0 until 'resume'; a restart ends it); 'allow' and 'block' add a rule for NAME (and with\n"
    "--subdomains every name below it) that wins over the lists at once, and 'unlist' removes\n"
    "it (kept in STATE-DIR/runtime.list across restarts); 'tail' follows the recent queries\n"
    "(recent-queries or http must be on); 'dashboard' prints the web dashboard's URL.\n"
    "'leak-check' asks the running daemon (control socket) what it listens on and forwards to,\n"
    "compares the resolvers this machine is configured to use with those observed answering\n"
    "it, and with --probe-zone tests for DNS interception; exit 0 no leak, 1 leak, 2 could not\n"
    "tell (docs/leak-check.md; its flags and --config are used only when no daemon answers,\n"
    "or to compare the daemon with). 'leak-server' serves ZONE authoritatively, answering\n"
    "each resolver with its own address.\n"
    "\n"
    "Options (each is also a config-file key, named as the flag unless\n"
    "docs/configuration.md says otherwise; flags override the file):\n"
    "  -c, --config FILE            read settings from FILE (key = value lines)\n"
    /* the settings' flags, from the settings table (lh_settings_help) */
    ;

/* After the settings' flags: the options that are not settings. */
static const char usage_tail[] =
    "\n"
    "Options that are not settings:\n"
    "      --json                   leak-check, stats, lists: the report as one JSON object\n"
    "      --subdomains             allow, block: the rule covers every name below NAME too\n"
    "      --blocked                tail: only blocked queries\n"
    "      --answer FILE            why: check this upstream answer (dig-style text,\n"
    "                               docs/blocklists.md)\n"
    "      --lookup                 why: ask the upstream now and check its answer\n"
    "  -h, --help                   show this help\n"
    "  -V, --version                show the version\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the lists and the hosts file;\n"
    "SIGUSR2 flushes the cache; SIGUSR1 reopens the query log.\n"
    "Documentation: README.md and docs/ (configuration, blocklists, forwarding,\n"
    "system-resolver, leak-check, observability, dashboard, reliability, dnssec).\n";

/* The settings' flags come from the settings table (config.h): getopt value FLAG_BASE + i is
 * lh_settings[i]'s flag. */
#define FLAG_BASE 1000
#define NOPTS_OTHER 9 /* config, help, version, json, subdomains, blocked, answer, lookup, end */

static void make_long_opts(struct option *o)
{
    size_t n = 0;
    o[n++] = (struct option){"config", required_argument, NULL, 'c'};
    o[n++] = (struct option){"help", no_argument, NULL, 'h'};
    o[n++] = (struct option){"version", no_argument, NULL, 'V'};
    o[n++] = (struct option){"json", no_argument, NULL, 'j'};
    o[n++] = (struct option){"subdomains", no_argument, NULL, 's'};
    o[n++] = (struct option){"blocked", no_argument, NULL, 'b'};
    o[n++] = (struct option){"answer", required_argument, NULL, 'a'};
    o[n++] = (struct option){"lookup", no_argument, NULL, 'L'};
    for (unsigned i = 0; i < lh_nsettings; i++)
        if (lh_settings[i].flag)
            o[n++] = (struct option){lh_settings[i].flag,
                                     lh_settings[i].flag_value ? no_argument : required_argument,
                                     NULL, (int)(FLAG_BASE + i)};
    o[n] = (struct option){NULL, 0, NULL, 0};
}

/* --help: the text above, the settings' flags from the table, the options that are not. */
static void print_help(void)
{
    static char flags[16384];
    lh_sbuf b;
    lh_sbuf_init(&b, flags, sizeof flags);
    lh_settings_help(&b);
    fputs(usage, stdout);
    fputs(flags, stdout);
    fputs(usage_tail, stdout);
}

static bool opt_json;       /* --json, --subdomains, --blocked, --answer, --lookup: the */
static bool opt_subdomains; /* flags that are not config keys */
static bool opt_blocked;
static const char *opt_answer; /* why: an upstream answer to check (dig-style text) */
static bool opt_lookup;        /* why: ask the upstream and check its answer */

/* Flags are collected first and applied after the config file, so that they override it. */
typedef struct flag_setting {
    const char *key;
    const char *value;
} flag_setting;

/* Builds the config from defaults, the file and the flags. Returns 0, 1 (done, e.g. --help),
 * -1 (a config error, already printed) or -2 (the config file cannot be read). */
static int build_config(int argc, char **argv, lh_config *cfg, unsigned npositional_min,
                        unsigned npositional)
{
    flag_setting *flags = calloc((size_t)argc + 1, sizeof *flags);
    struct option long_opts[LH_SETTINGS_MAX + NOPTS_OTHER];
    const char *config_path = NULL;
    size_t nflags = 0;
    int opt, rc = 0;
    if (!flags) return -1;
    make_long_opts(long_opts);
    while ((opt = getopt_long(argc, argv, "c:l:hV", long_opts, NULL)) != -1) {
        if (opt == 'h') {
            print_help();
            rc = 1;
            goto out;
        }
        if (opt == 'V') {
            printf("loophole %s\n", LH_VERSION);
            rc = 1;
            goto out;
        }
        if (opt == 'c') {
            config_path = optarg;
            continue;
        }
        if (opt == 'a' || opt == 'L') {
            if (opt == 'a') opt_answer = optarg;
            opt_lookup |= opt == 'L';
            continue;
        }
        if (opt == 'j' || opt == 's' || opt == 'b') {
            *(opt == 'j' ? &opt_json : opt == 's' ? &opt_subdomains : &opt_blocked) = true;
            continue;
        }
        if (opt == 'l') opt = FLAG_BASE + lh_setting_flag_index("listen");
        if (opt < FLAG_BASE || opt >= FLAG_BASE + (int)lh_nsettings) {
            fputs("Try 'loophole --help'.\n", stderr);
            rc = -1;
            goto out;
        }
        const lh_setting *d = &lh_settings[opt - FLAG_BASE];
        flags[nflags].key = d->key;
        flags[nflags].value = d->flag_value ? d->flag_value : optarg;
        nflags++;
    }
    if (optind + (int)npositional < argc || optind + (int)npositional_min > argc) {
        if (optind < argc)
            fprintf(stderr, "loophole: unexpected argument '%s'. Try 'loophole --help'.\n",
                    argv[optind + npositional_min]);
        else
            fprintf(stderr, "loophole: missing argument. Try 'loophole --help'.\n");
        rc = -1;
        goto out;
    }
    char err[LH_ERR_MAX];
    int lrc = config_path ? lh_config_load_file(cfg, config_path, err, sizeof err) : 0;
    if (lrc != 0) {
        fprintf(stderr, "%s\n", err);
        rc = lrc == -2 ? -2 : -1; /* -2: the file cannot be read (exit 1, as any file named) */
        goto out;
    }
    for (size_t i = 0; i < nflags; i++) {
        if (lh_config_set(cfg, LH_SRC_FLAG, flags[i].key, flags[i].value, err, sizeof err) != 0) {
            fprintf(stderr, "loophole: %s\n", err);
            rc = -1;
            goto out;
        }
    }
    if (lh_config_validate(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "loophole: %s\n", err); /* it names the file:line of each setting */
        rc = -1;
    }
out:
    free(flags);
    return rc;
}

static const struct passwd *target_user(const lh_config *cfg, char *err, size_t errlen);

/* What `serve` needs at start besides the lists, checked the same way it fails: somewhere to
 * forward to (a named resolv.conf that cannot be read is not quietly replaced), the CA file
 * of the encrypted upstreams, and a query log that can be opened (not created here). */
static int check_start_files(const lh_config *cfg, char *err, size_t errlen)
{
    lh_sockaddr addrs[LH_UPSTREAMS_MAX];
    char source[LH_ERR_MAX];
    enum lh_upstream_origin origin;
    if (lh_config_upstreams(cfg, addrs, LH_UPSTREAMS_MAX, source, sizeof source, &origin) == 0) {
        snprintf(err, errlen, "no upstream to forward to: %.400s", source);
        return -1;
    }
    if (cfg->tls_ca && access(cfg->tls_ca, R_OK) != 0) {
        snprintf(err, errlen, "tls-ca %s: %s", cfg->tls_ca, strerror(errno));
        return -1;
    }
    const char *q = cfg->query_log;
    if (q && strcmp(q, "stdout") != 0) {
        char dir[4096];
        const char *slash = strrchr(q, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - q) + (slash == q) : 1,
                 slash ? q : ".");
        if (access(q, F_OK) == 0 ? access(q, W_OK) != 0 : access(dir, W_OK) != 0) {
            snprintf(err, errlen, "query-log: cannot open %s: %s", q, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* check-config refuses what serve would refuse (the user to switch to) and what serve only
 * skips with a warning: a malformed list line (a bad or over-long regex included) is an error
 * here, named file:line, so a list can be checked before it is used. */
static int cmd_check_config(lh_config *cfg)
{
    char err[LH_ERR_MAX];
    if (!cfg->allow_root && !target_user(cfg, err, sizeof err)) {
        fprintf(stderr, "loophole: %s\n", err);
        return 1;
    }
    if (check_start_files(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "loophole: %s\n", err);
        return 1;
    }
    lh_policy *p = lh_policy_build(cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t i = 0; i < p->blocks.nlists; i++) {
        const lh_list_info *l = &p->blocks.lists[i];
        if (!l->counts.errors) continue;
        unsigned line = 0;
        const char *reason = strchr(l->counts.first_error, ':');
        sscanf(l->counts.first_error, "line %u", &line);
        fprintf(stderr, "%s:%u:%s", l->path, line, reason ? reason + 1 : l->counts.first_error);
        if (l->counts.errors > 1)
            fprintf(stderr, " (and %u more malformed line(s))", l->counts.errors - 1);
        fputc('\n', stderr);
        lh_policy_free(p);
        return 1;
    }
    size_t rules = 0;
    for (size_t i = 0; i < p->blocks.nlists; i++)
        rules += p->blocks.lists[i].counts.rules;
    /* The trust anchors are read only when something will use them: validate mode, or files
     * named explicitly (a typo there should not wait until validation is switched on). */
    size_t nanchors = 0;
    if (cfg->dnssec >= LH_DNSSEC_MODE_VALIDATE || cfg->ntrust_anchors) {
        lh_dnssec_anchors *a = lh_dnssec_anchors_from_config(cfg, err, sizeof err);
        if (!a) {
            fprintf(stderr, "%s\n", err);
            lh_policy_free(p);
            return 1;
        }
        nanchors = lh_dnssec_anchors_count(a);
        lh_dnssec_anchors_free(a);
    }
    /* The runtime rules the daemon would read (loophole allow/block, or edited by hand): a
     * line serve would skip at start, and refuse at a reload, is an error here. */
    size_t nruntime = 0;
    if (cfg->state_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/runtime.list", cfg->state_dir);
        /* Checked by someone else than the daemon's user (the default needs root): said. */
        err[0] = 0;
        lh_overlay *o =
            access(path, R_OK) != 0 && errno == EACCES
                ? (fprintf(stderr, "loophole: %s: not checked: %s\n", path, strerror(errno)),
                   lh_overlay_new())
                : lh_overlay_load(path, err, sizeof err);
        if (!o || err[0]) {
            fprintf(stderr, "loophole: runtime rules: %s\n", err);
            lh_overlay_unref(o);
            lh_policy_free(p);
            return 1;
        }
        nruntime = o->nrules;
        lh_overlay_unref(o);
    }
    char extra_text[96] = "";
    if (nruntime) snprintf(extra_text, sizeof extra_text, ", %zu runtime rule(s)", nruntime);
    if (nanchors)
        snprintf(extra_text + strlen(extra_text), sizeof extra_text - strlen(extra_text),
                 ", %zu trust anchor record(s)", nanchors);
    printf("%s: OK (%u listen address(es), %zu list(s) with %zu rules%s%s%s%s)\n",
           cfg->config_file ? cfg->config_file : "defaults", cfg->nlisten, p->blocks.nlists, rules,
           p->has_hosts ? ", hosts file readable" : "", p->hosts_missing ? ", no hosts file: " : "",
           p->hosts_missing ? cfg->hosts_file : "", extra_text);
    lh_policy_free(p);
    return 0;
}

/* The runtime rules the daemon would read at start (state-dir/runtime.list), or NULL. */
static lh_overlay *why_runtime_rules(const lh_config *cfg)
{
    if (!cfg->state_dir) return NULL;
    char path[4096], err[LH_ERR_MAX];
    snprintf(path, sizeof path, "%s/runtime.list", cfg->state_dir);
    lh_overlay *o = lh_overlay_load(path, err, sizeof err);
    if (!o) printf("  (runtime rules not read: %s)\n", err);
    return o;
}

/* loophole why NAME [TYPE] [--answer FILE | --lookup]: the explanation (why.h) from the same
 * config the daemon would use, with the runtime rules it would read at start. */
static int cmd_why(lh_config *cfg, const char *name, const char *type_text)
{
    char err[LH_ERR_MAX];
    const char *type = type_text ? type_text : "A";
    ldns_rr_type t = ldns_get_rr_type_by_name(type);
    if (t == 0) {
        fprintf(stderr, "loophole: why: '%s' is not a record type\n", type);
        return 2;
    }
    lh_log_threshold = LH_LOG_WARN; /* list load lines would drown the answer */
    lh_policy *p = lh_policy_build(cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    lh_why *w = malloc(sizeof *w);
    static uint8_t answer[LH_MSG_MAX];
    char from[LH_ERR_MAX], ov_path[4096];
    bool local_only = false; /* --lookup for a name answered here: nothing asked */
    lh_overlay *ov = why_runtime_rules(cfg);
    snprintf(ov_path, sizeof ov_path, "%s/runtime.list", cfg->state_dir ? cfg->state_dir : ".");
    lh_why_input in = {
        .cfg = cfg, .policy = p, .ov = ov, .ov_path = ov_path, .name = name, .type = type};
    int rc = 0;
    if (!w) {
        fprintf(stderr, "loophole: why: out of memory\n");
        rc = 1;
        goto out;
    }
    if (opt_answer) {
        in.answer_len = lh_why_read_answer(opt_answer, name, (uint16_t)t, answer, sizeof answer,
                                           err, sizeof err);
        in.answer_from = opt_answer;
    } else if (opt_lookup) {
        /* Asked of the upstreams the question would go to: decide first. */
        lh_decision d;
        uint8_t q[LH_MSG_MAX];
        size_t qlen = lh_wire_build_query(q, sizeof q, name, (uint16_t)t, 0);
        bool ok = qlen && lh_decide(p, ov, false, q, qlen, &d) == LH_PARSE_OK;
        /* A name answered here is never asked upstream: nor is it by why. */
        local_only = ok && d.verdict.kind != LH_VERDICT_FORWARD;
        in.answer_len = ok && !local_only
                            ? lh_why_lookup(cfg, d.verdict.group, name, (uint16_t)t, answer,
                                            sizeof answer, from, sizeof from, err, sizeof err)
                            : 0;
        in.answer_from = from;
        if (!ok) snprintf(err, sizeof err, "'%s' is not a valid DNS name", name);
    }
    if ((opt_answer || opt_lookup) && !in.answer_len && !local_only) {
        fprintf(stderr, "loophole: why: %s\n", err);
        rc = opt_answer ? 2 : 1;
        goto out;
    }
    in.answer = in.answer_len ? answer : NULL;
    int r = lh_why_explain(&in, w, err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "loophole: why: %s\n", err);
        rc = r == -2 ? 2 : 1;
    } else {
        lh_why_print(w, stdout);
        if (local_only)
            printf("upstream answer: not asked: %s is answered here, never asked upstream\n",
                   w->name);
        if (w->list_err[0]) fprintf(stderr, "%s\n", w->list_err);
    }
    lh_why_free(w);
out:
    free(w);
    lh_overlay_unref(ov);
    lh_policy_free(p);
    return rc;
}

/* "30s", "5m", "1h", "90" (seconds), "0" (until resumed). -1 if it is none of them. */
static long long parse_duration(const char *t)
{
    char *e;
    errno = 0;
    long long v = strtoll(t, &e, 10);
    if (errno || e == t || v < 0) return -1;
    long long mult = !*e || !strcmp(e, "s") ? 1 : !strcmp(e, "m") ? 60 : !strcmp(e, "h") ? 3600 : 0;
    if (!mult || v > 7 * 86400 / mult) return -1;
    return v * mult;
}

/* pause, resume, allow, block, unlist, dashboard: one request each to the running daemon. */
static int cmd_runtime(const lh_config *cfg, const char *cmd, const char *arg)
{
    char req[1024];
    if (!strcmp(cmd, "pause")) {
        long long secs = arg ? parse_duration(arg) : 300;
        if (secs < 0) {
            fprintf(stderr,
                    "loophole: pause: '%s' is not a duration like 30s, 5m, 1h or 0 "
                    "(until resumed), at most 7 days\n",
                    arg);
            return 2;
        }
        snprintf(req, sizeof req, "pause %lld", secs);
    } else if (arg) {
        snprintf(req, sizeof req, "%s %s%s", cmd, arg, opt_subdomains ? " subdomains" : "");
    } else {
        snprintf(req, sizeof req, "%s", cmd);
    }
    if (opt_subdomains && (strcmp(cmd, "allow") && strcmp(cmd, "block"))) {
        fprintf(stderr, "loophole: --subdomains goes with allow and block\n");
        return 2;
    }
    return lh_control_call(cfg->control_socket, req);
}

static volatile sig_atomic_t tail_stop;
static void on_tail_signal(int sig)
{
    tail_stop = 1;
}

/* loophole tail [--blocked]: the last queries, then new ones as they come (polled twice a
 * second with a per-loop cursor, so nothing is shown twice or skipped unless the ring
 * wrapped between two polls). */
static int cmd_tail(const lh_config *cfg)
{
    char req[1024], cursor[900] = "";
    signal(SIGINT, on_tail_signal);
    signal(SIGTERM, on_tail_signal);
    signal(SIGPIPE, on_tail_signal);
    bool first = true;
    while (!tail_stop) {
        snprintf(req, sizeof req, "recent%s%s%s", opt_blocked ? " blocked" : "",
                 first ? "" : " from ", cursor);
        char *body;
        bool ok;
        int rc = lh_control_fetch(cfg->control_socket, req, &body, &ok);
        if (rc) return first ? rc : 0; /* the daemon stopped */
        if (!ok) {
            fputs(body, stderr);
            free(body);
            return 1;
        }
        char *nl = strchr(body, '\n');
        if (!strncmp(body, "cursor ", 7) && nl) {
            snprintf(cursor, sizeof cursor, "%.*s", (int)(nl - body - 7), body + 7);
            fputs(nl + 1, stdout);
            fflush(stdout);
        }
        free(body);
        first = false;
        struct timespec ts = {.tv_nsec = 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* The user serve switches to when started as root: it must exist and must not be root, unless
 * allow-root keeps root on purpose. Shared by serve and check-config, so that check-config
 * refuses what serve would. Returns the entry, or NULL with the reason in err. */
static const struct passwd *target_user(const lh_config *cfg, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(cfg->user);
    if (!pw) {
        snprintf(err, errlen,
                 "user '%s' does not exist: create it (e.g. 'useradd --system --no-create-home "
                 "loophole') or pass --user with an existing unprivileged user",
                 cfg->user);
        return NULL;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "user '%s' is root: pass --allow-root to run as root on purpose",
                 cfg->user);
        return NULL;
    }
    return pw;
}

/* Started as root: the sockets are bound, so give root up for good before serving. Files read
 * later (lists and hosts on reload) must be readable by that user. */
static int drop_privileges(const lh_config *cfg)
{
    if (geteuid() != 0) return 0;
    if (cfg->allow_root) {
        lh_warn("running as root (--allow-root): consider --user with an unprivileged user");
        return 0;
    }
    char err[LH_ERR_MAX];
    const struct passwd *pw = target_user(cfg, err, sizeof err);
    if (!pw) {
        lh_err("%s", err);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        lh_err("cannot switch to user '%s': %s", cfg->user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) { /* must be impossible now */
        lh_err("privileges could be regained after switching to '%s': refusing to run", cfg->user);
        return -1;
    }
    lh_info("running as user %s (uid %u)", cfg->user, (unsigned)pw->pw_uid);
    return 0;
}

/* loophole health: a container HEALTHCHECK or a monitoring probe. Plain blocking sockets: this
 * is a short-lived client, not the daemon. */
static int cmd_health(const lh_config *cfg)
{
    const lh_sockaddr *a = &cfg->listen[0];
    char where[64];
    lh_addr_format(a, where, sizeof where);
    uint8_t q[64], r[512];
    uint16_t id = (uint16_t)(getpid() ^ time(NULL));
    size_t qlen = lh_wire_build_query(q, sizeof q, "localhost", LH_TYPE_A, id);
    int fd = socket(a->sa.sa_family, SOCK_DGRAM, 0);
    if (fd < 0) {
        fprintf(stderr, "loophole health: socket: %s\n", strerror(errno));
        return 1;
    }
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    socklen_t alen = a->sa.sa_family == AF_INET6 ? sizeof a->v6 : sizeof a->v4;
    ssize_t n = -1;
    if (connect(fd, &a->sa, alen) == 0 && send(fd, q, qlen, 0) == (ssize_t)qlen)
        n = recv(fd, r, sizeof r, 0);
    int saved = errno;
    close(fd);
    static const uint8_t want[4] = {127, 0, 0, 1};
    if (n < (ssize_t)qlen + 16 || lh_rd16(r) != id || (r[3] & 0xf) != 0 || lh_rd16(r + 6) < 1 ||
        memcmp(r + n - 4, want, 4) != 0) {
        fprintf(stderr, "loophole health: %s: %s\n", where,
                n >= 0                  ? "wrong answer for localhost"
                : saved == ECONNREFUSED ? "nothing listens there (connection refused)"
                                        : "no answer within 2 s");
        return 1;
    }
    printf("loophole health: %s answers\n", where);
    return 0;
}

/* Each TCP connection is a descriptor: the default soft limit (1024) would cap connections
 * below tcp-max-connections, so take what the hard limit allows. */
static void raise_fd_limit(const lh_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max) return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < (rlim_t)cfg->tcp_max_connections + 64)
        lh_warn("open file limit %lu is below tcp-max-connections (%u): raise it (LimitNOFILE=)",
                (unsigned long)rl.rlim_max, cfg->tcp_max_connections);
}

/* leak-server: the leak zone behind the listeners. */
static int serve_leak_zone(lh_config *cfg, uv_loop_t *loop)
{
    char err[LH_ERR_MAX];
    lh_leak_zone *zone = lh_leak_zone_new(cfg, err, sizeof err);
    lh_leak_server *s = zone ? lh_leak_server_start(loop, cfg, zone, err, sizeof err) : NULL;
    int rc = 0;
    if (!s) {
        lh_err("%s", err);
        rc = 1;
    } else if (drop_privileges(cfg) != 0) {
        rc = 1;
    } else {
        lh_info("ready: leak server for %s", cfg->leak_zone);
        uv_run(loop, UV_RUN_DEFAULT);
        const lh_leak_stats *ls = lh_leak_zone_stats(zone);
        lh_info("leak server: %llu answered, %llu refused, %llu rate-limited, %llu labels "
                "evicted",
                (unsigned long long)ls->answered, (unsigned long long)ls->refused,
                (unsigned long long)ls->rate_limited, (unsigned long long)ls->labels_evicted);
        lh_info("stopped");
    }
    lh_leak_server_free(s);
    lh_leak_zone_free(zone);
    return rc;
}

/* serve: the main loop (and its workers) answering from the policy. */
static int serve_resolver(lh_config *cfg, char **argv, uv_loop_t *loop)
{
    char err[LH_ERR_MAX];
    lh_policy *policy = lh_policy_build(cfg, err, sizeof err);
    if (!policy) {
        lh_err("%s", err);
        return 1;
    }
    if (policy->hosts_missing)
        lh_warn("%s does not exist: serving without a hosts file (SIGHUP reads it once it does)",
                cfg->hosts_file);
    lh_daemon *d = calloc(1, sizeof *d);
    if (!d) {
        lh_err("out of memory");
        lh_policy_free(policy);
        return 1;
    }
    d->admin.argv = argv + 1; /* the options, for the dashboard's `loophole leak-check` */
    d->admin.explain = lh_why_json;
    int rc = 0;
    if (lh_daemon_start(d, loop, cfg, policy, err, sizeof err) != 0) {
        lh_err("%s", err);
        rc = 1;
    } else if (drop_privileges(cfg) != 0) {
        rc = 1;
        lh_daemon_stop(d);
        uv_run(loop, UV_RUN_DEFAULT);
    } else {
        lh_info("ready (hosts file: %s%s)", cfg->hosts_file ? cfg->hosts_file : "none",
                d->srv.policy && d->srv.policy->hosts_missing ? ", not there yet" : "");
        uv_run(loop, UV_RUN_DEFAULT);
        lh_info("stopped");
    }
    lh_daemon_free(d);
    free(d);
    return rc;
}

/* serve, or leak-server (the same listeners and lifecycle, answering from the leak zone). */
static int cmd_serve(lh_config *cfg, char **argv)
{
    /* SIGPIPE and SIGXFSZ are ignored since main(), before any worker thread exists. */
    raise_fd_limit(cfg);
    /* Lists are a few big blocks: keep them mmap'd, so a reload's old copy goes back to the
     * kernel when freed (glibc would otherwise raise the threshold and keep them in the heap). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    uv_loop_t *loop = uv_default_loop();
    int rc = cfg->leak_server ? serve_leak_zone(cfg, loop) : serve_resolver(cfg, argv, loop);
    uv_loop_close(loop);
    return rc;
}

int main(int argc, char **argv)
{
    /* A peer that has gone (a TCP or control client that closed or reset before its answer
     * was written, a `loophole reload` that timed out) must cost one write EPIPE, not the
     * process: libuv leaves SIGPIPE to the application, and its default action kills it. Any
     * client could do that; the write's error is handled (that connection is closed). */
    signal(SIGPIPE, SIG_IGN);
    /* Every command that builds the policy (why, check-config, serve) may build a big list on
     * disk: a file-size limit must fail that write (EFBIG, the build falls back to memory),
     * not end the process (outside review: `loophole why` died of SIGXFSZ). */
    signal(SIGXFSZ, SIG_IGN);
    const char *cmd = "serve";
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    bool why = !strcmp(cmd, "why") || !strcmp(cmd, "dnssec");
    /* two words: "lists update", "cache flush" */
    if ((!strcmp(cmd, "lists") && argc > 1 && !strcmp(argv[1], "update")) ||
        (!strcmp(cmd, "cache") && argc > 1 && !strcmp(argv[1], "flush"))) {
        cmd = cmd[0] == 'l' ? "lists-update" : "cache-flush";
        argv[1] = argv[0];
        argv++;
        argc--;
    } else if (!strcmp(cmd, "cache")) {
        fprintf(stderr, "loophole: 'cache' takes 'flush'. Try 'loophole --help'.\n");
        return 2;
    }
    static const char *const commands[] = {"serve",  "check-config", "health",      "lists-update",
                                           "why",    "leak-check",   "leak-server", "stats",
                                           "reload", "cache-flush",  "lists",       "dnssec",
                                           "pause",  "resume",       "allow",       "block",
                                           "unlist", "tail",         "dashboard"};
    bool known = false;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        known = known || !strcmp(cmd, commands[i]);
    if (!known) {
        fprintf(stderr, "loophole: unknown command '%s'. Try 'loophole --help'.\n", cmd);
        return 2;
    }
    lh_config cfg;
    lh_config_defaults(&cfg);
    cfg.leak_server = !strcmp(cmd, "leak-server");
    bool named = !strcmp(cmd, "allow") || !strcmp(cmd, "block") || !strcmp(cmd, "unlist");
    bool pause = !strcmp(cmd, "pause");
    int r = build_config(argc, argv, &cfg, why || named ? 1 : 0, why ? 2 : named || pause ? 1 : 0);
    if (r != 0) {
        lh_config_free(&cfg);
        return r > 0 ? 0 : r == -2 ? 1 : 2;
    }
    lh_log_threshold = cfg.log_level;
    if (!strcmp(cmd, "dnssec"))
        r = lh_dnssec_trace(&cfg, argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL);
    else if (why)
        r = cmd_why(&cfg, argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL);
    else if (!strcmp(cmd, "health"))
        r = cmd_health(&cfg);
    else if (!strcmp(cmd, "lists-update"))
        r = lh_lists_update(&cfg);
    else if (!strcmp(cmd, "stats") || !strcmp(cmd, "lists"))
        r = lh_control_call(cfg.control_socket,
                            opt_json ? (cmd[0] == 's' ? "stats json" : "lists json") : cmd);
    else if (!strcmp(cmd, "reload") || !strcmp(cmd, "cache-flush"))
        r = lh_control_call(cfg.control_socket, cmd[0] == 'r' ? "reload" : "cache flush");
    else if (named || pause || !strcmp(cmd, "resume") || !strcmp(cmd, "dashboard"))
        r = cmd_runtime(&cfg, cmd, optind < argc ? argv[optind] : NULL);
    else if (!strcmp(cmd, "tail"))
        r = cmd_tail(&cfg);
    else if (!strcmp(cmd, "leak-check"))
        r = lh_leak_check(&cfg, opt_json);
    else if (!strcmp(cmd, "check-config"))
        r = cmd_check_config(&cfg);
    else
        r = cmd_serve(&cfg, argv); /* serve, leak-server */
    lh_config_free(&cfg);
    return r;
}
