/* dnssec_config.c - the DNSSEC settings (dnssec, trust-anchor, domain-insecure) and the trust
 * anchors they name. Kept out of config.c so that the DNSSEC layer is one piece. */
#include "loophole/dnssec_config.h"

#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool lh_config_is_dnssec_key(const char *key)
{
    return !strcmp(key, "dnssec") || !strcmp(key, "trust-anchor") ||
           !strcmp(key, "domain-insecure");
}

static int push(char ***list, unsigned *n, const char *v)
{
    char **nv = realloc(*list, (*n + 1) * sizeof *nv);
    if (!nv) return -1;
    *list = nv;
    if (!(nv[*n] = strdup(v))) return -1;
    (*n)++;
    return 0;
}

static void clear(char ***list, unsigned *n)
{
    for (unsigned i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

void lh_config_free_dnssec(lh_config *c)
{
    clear(&c->trust_anchors, &c->ntrust_anchors);
    clear(&c->domain_insecure, &c->ndomain_insecure);
}

int lh_config_set_dnssec(lh_config *c, enum lh_config_source src, const char *key, const char *v,
                         char *err, size_t errlen)
{
    if (!strcmp(key, "dnssec")) {
        static const char *const modes[] = {"off", "process", "validate", "allow-downgrade"};
        for (unsigned i = 0; i < 4; i++)
            if (!strcmp(v, modes[i])) {
                c->dnssec = (enum lh_dnssec_mode)i;
                return 0;
            }
        snprintf(err, errlen, "dnssec: '%s' is not off, process, validate or allow-downgrade", v);
        return -1;
    }
    if (!strcmp(key, "trust-anchor")) {
        if (!*v) {
            snprintf(err, errlen, "trust-anchor: needs a file of DS or DNSKEY records");
            return -1;
        }
        /* Flags replace the file's anchors, as --upstream replaces upstream lines. */
        if (src > c->trust_anchors_src) clear(&c->trust_anchors, &c->ntrust_anchors);
        c->trust_anchors_src = src;
        if (push(&c->trust_anchors, &c->ntrust_anchors, v) != 0) goto nomem;
        return 0;
    }
    /* domain-insecure */
    ldns_rdf *d = NULL;
    if (!*v || ldns_str2rdf_dname(&d, v) != LDNS_STATUS_OK) {
        snprintf(err, errlen, "domain-insecure: '%s' is not a domain name", v);
        return -1;
    }
    ldns_rdf_deep_free(d);
    if (push(&c->domain_insecure, &c->ndomain_insecure, v) != 0) goto nomem;
    return 0;
nomem:
    snprintf(err, errlen, "%s: out of memory", key);
    return -1;
}

lh_dnssec_anchors *lh_dnssec_anchors_from_config(const lh_config *c, char *err, size_t errlen)
{
    lh_dnssec_anchors *a = lh_dnssec_anchors_new();
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < c->ntrust_anchors; i++)
        if (lh_dnssec_anchors_load_file(a, c->trust_anchors[i], err, errlen) != 0) goto fail;
    if (c->ntrust_anchors == 0 &&
        lh_dnssec_anchors_load_file(a, LH_DNSSEC_ROOT_KEY, err, errlen) != 0) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n,
                 " (the root trust anchor: install dns-root-data, or name one with trust-anchor)");
        goto fail;
    }
    for (unsigned i = 0; i < c->ndomain_insecure; i++)
        if (lh_dnssec_anchors_add_insecure(a, c->domain_insecure[i], err, errlen) != 0) goto fail;
    return a;
fail:
    lh_dnssec_anchors_free(a);
    return NULL;
}
