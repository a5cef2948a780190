/* main.c - the loophole command: subcommands and flags. Logic lives in the library. */
#include "loophole/config.h"
#include "loophole/log.h"
#include "loophole/policy.h"
#include "loophole/server.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LH_VERSION "0.1.0"

static const char usage[] =
    "Usage: loophole [serve] [OPTIONS]\n"
    "       loophole check-config [--config FILE] [OPTIONS]\n"
    "       loophole --help | --version\n"
    "\n"
    "A local sinkhole DNS resolver. 'serve' (the default) answers DNS over UDP and TCP in the\n"
    "foreground, logging to stderr. 'check-config' validates the configuration and the files it\n"
    "names, printing file:line: message for the first error.\n"
    "\n"
    "Options (each has a config-file key of the same name; flags override the file):\n"
    "  -c, --config FILE            read settings from FILE (key = value lines)\n"
    "  -l, --listen ADDR[:PORT]     listen on UDP and TCP; repeatable; IPv6 as [::1]:53\n"
    "                               (default " LH_DEFAULT_LISTEN ")\n"
    "      --log-level LEVEL        error, warn, info (default) or debug\n"
    "      --hosts-file FILE        answer names from a hosts file (default " LH_DEFAULT_HOSTS_FILE ")\n"
    "      --no-hosts               do not read a hosts file\n"
    "      --local-ttl SECONDS      TTL of locally answered records (default 60)\n"
    "      --edns-udp-size BYTES    largest UDP answer sent, 512-4096 (default 1232)\n"
    "      --tcp-idle-timeout MS    close TCP connections without a complete query for MS\n"
    "                               milliseconds (default 10000)\n"
    "      --tcp-max-connections N  concurrent TCP connections (default 1000)\n"
    "  -h, --help                   show this help\n"
    "  -V, --version                show the version\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the hosts file.\n"
    "Documentation: README.md and docs/configuration.md.\n";

enum { OPT_LOG_LEVEL = 256, OPT_HOSTS_FILE, OPT_NO_HOSTS, OPT_LOCAL_TTL, OPT_EDNS_UDP_SIZE,
       OPT_TCP_IDLE, OPT_TCP_MAX };

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"listen", required_argument, NULL, 'l'},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"hosts-file", required_argument, NULL, OPT_HOSTS_FILE},
    {"no-hosts", no_argument, NULL, OPT_NO_HOSTS},
    {"local-ttl", required_argument, NULL, OPT_LOCAL_TTL},
    {"edns-udp-size", required_argument, NULL, OPT_EDNS_UDP_SIZE},
    {"tcp-idle-timeout", required_argument, NULL, OPT_TCP_IDLE},
    {"tcp-max-connections", required_argument, NULL, OPT_TCP_MAX},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Flags are collected first and applied after the config file, so that they override it. */
typedef struct flag_setting {
    const char *key;
    const char *value;
} flag_setting;

static const char *flag_key(int opt)
{
    switch (opt) {
    case 'l': return "listen";
    case OPT_LOG_LEVEL: return "log-level";
    case OPT_HOSTS_FILE: return "hosts-file";
    case OPT_NO_HOSTS: return "hosts-file";
    case OPT_LOCAL_TTL: return "local-ttl";
    case OPT_EDNS_UDP_SIZE: return "edns-udp-size";
    case OPT_TCP_IDLE: return "tcp-idle-timeout";
    case OPT_TCP_MAX: return "tcp-max-connections";
    default: return NULL;
    }
}

/* Builds the config from defaults, the file and the flags. Returns 0, 1 (done, e.g. --help) or
 * -1 (error already printed). */
static int build_config(int argc, char **argv, lh_config *cfg)
{
    flag_setting *flags = calloc((size_t)argc + 1, sizeof *flags);
    const char *config_path = NULL;
    size_t nflags = 0;
    int opt, rc = 0;
    if (!flags)
        return -1;
    while ((opt = getopt_long(argc, argv, "c:l:hV", long_opts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(usage, stdout);
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
        const char *key = flag_key(opt);
        if (!key) {
            fputs("Try 'loophole --help'.\n", stderr);
            rc = -1;
            goto out;
        }
        flags[nflags].key = key;
        flags[nflags].value = opt == OPT_NO_HOSTS ? "none" : optarg;
        nflags++;
    }
    if (optind < argc) {
        fprintf(stderr, "loophole: unexpected argument '%s'. Try 'loophole --help'.\n", argv[optind]);
        rc = -1;
        goto out;
    }
    char err[LH_ERR_MAX];
    if (config_path && lh_config_load_file(cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < nflags; i++) {
        if (lh_config_set(cfg, LH_SRC_FLAG, flags[i].key, flags[i].value, err, sizeof err) != 0) {
            fprintf(stderr, "loophole: --%s: %s\n", flags[i].key, err);
            rc = -1;
            goto out;
        }
    }
out:
    free(flags);
    return rc;
}

static int cmd_check_config(lh_config *cfg)
{
    char err[LH_ERR_MAX];
    lh_policy *p = lh_policy_build(cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%s: OK (%u listen address(es)%s)\n", cfg->config_file ? cfg->config_file : "defaults",
           cfg->nlisten, p->has_hosts ? ", hosts file readable" : "");
    lh_policy_free(p);
    return 0;
}

static int cmd_serve(lh_config *cfg)
{
    char err[LH_ERR_MAX];
    lh_policy *policy = lh_policy_build(cfg, err, sizeof err);
    if (!policy) {
        lh_err("%s", err);
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    lh_server *s = calloc(1, sizeof *s);
    if (!s) {
        lh_err("out of memory");
        lh_policy_free(policy);
        return 1;
    }
    int rc = 0;
    if (lh_server_start(s, loop, cfg, policy, err, sizeof err) != 0) {
        lh_err("%s", err);
        rc = 1;
    } else {
        lh_info("ready (hosts file: %s)", cfg->hosts_file ? cfg->hosts_file : "none");
        uv_run(loop, UV_RUN_DEFAULT);
        lh_info("stopped");
    }
    lh_server_free(s);
    free(s);
    uv_loop_close(loop);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = "serve";
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    if (strcmp(cmd, "serve") && strcmp(cmd, "check-config")) {
        fprintf(stderr, "loophole: unknown command '%s'. Try 'loophole --help'.\n", cmd);
        return 2;
    }
    lh_config cfg;
    lh_config_defaults(&cfg);
    int r = build_config(argc, argv, &cfg);
    if (r != 0) {
        lh_config_free(&cfg);
        return r > 0 ? 0 : 2;
    }
    lh_log_threshold = cfg.log_level;
    r = !strcmp(cmd, "serve") ? cmd_serve(&cfg) : cmd_check_config(&cfg);
    lh_config_free(&cfg);
    return r;
}
