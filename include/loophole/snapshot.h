/* snapshot.h - the compiled blocklists kept on disk (state-dir/lists.snapshot), so that a
 * restart maps a big list read-only instead of parsing it: the name tree exactly as it is in
 * memory, the patterns' text and the lists' counts, behind a versioned, checksummed header
 * that also holds a fingerprint of the sources (each file's path, settings, size, mtime and
 * content hash). Anything that does not match (missing, truncated, corrupt, another version,
 * a changed source) is ignored with a log line and the lists are parsed as usual; nothing in
 * a snapshot is used before all of it has been checked. Snapshots are written for lists of
 * LH_SNAPSHOT_MIN_NAMES names or more (smaller ones parse in milliseconds). */
#ifndef LH_SNAPSHOT_H
#define LH_SNAPSHOT_H

#include "loophole/blockset.h"
#include "loophole/config.h"

#include <stdint.h>

#define LH_SNAPSHOT_FILE "lists.snapshot"
#define LH_SNAPSHOT_MIN_NAMES 20000
#define LH_SNAPSHOT_FORMAT 1

/* The fingerprint of the configured lists as they are on disk now (reads every file). Returns
 * 0, or -1 with err when a source cannot be read. */
int lh_snapshot_sources(const lh_config *cfg, uint64_t *out, char *err, size_t errlen);

/* Fills an initialised, empty blockset from `path` when it is a valid snapshot of sources
 * `fingerprint`. Returns 0, or -1 with the reason in why (the blockset is then empty again).
 * Every byte is checked through the mapping, which leaves the tree resident; `lean` (a
 * reload, with another tree resident): the checksum is read through a small buffer and the
 * tree checked a stretch at a time, its pages dropped behind the check, so that none stays
 * resident (lh_snapshot_populate brings them in later). */
int lh_snapshot_load(lh_blockset *b, const char *path, uint64_t fingerprint, bool lean, char *why,
                     size_t whylen);
/* Reads a snapshot from memory (a copy is mapped): what lh_snapshot_load checks, for the
 * fuzzer. */
int lh_snapshot_load_bytes(lh_blockset *b, const uint8_t *data, size_t len, uint64_t fingerprint,
                           char *why, size_t whylen);
/* Writes a finished blockset to `path` (a temporary file renamed into place). Returns 0, or -1
 * with err. */
int lh_snapshot_save(const lh_blockset *b, const char *path, uint64_t fingerprint, char *err,
                     size_t errlen);
/* The checksum used in the header (exposed for the fuzzer, which fixes it up). */
uint64_t lh_snapshot_checksum(const uint8_t *data, size_t len);
#define LH_SNAPSHOT_CHECKSUM_OFF 24 /* where the header keeps it (zero while summing) */

/* Prefaults a mapped blockset's pages (a lean load leaves none resident): for a reloaded
 * policy once the one it replaced is freed (lh_policy_handover). */
void lh_snapshot_populate(const lh_blockset *b);

/* The parse the policy build hands to lh_snapshot_load_lists: initialises the blockset (with
 * its name rules going to `spill` when not NULL), reads every list, finishes it. */
typedef struct lh_spill lh_spill;
typedef int (*lh_parse_fn)(void *ctx, lh_spill *spill, char *err, size_t errlen);

/* The policy build's use of all this: the lists from the snapshot in cfg's state-dir when it
 * is current; else, for lists of about LH_SNAPSHOT_MIN_NAMES names or more (expected_names,
 * estimated from their size), built on disk (spill.h) into a new snapshot that is then
 * mapped: in the state directory, or without one (--state-dir none) in an unnamed temporary
 * file in $TMPDIR (default /tmp). When that folder cannot be used (not writable, full, a
 * read or write error) a log line says why and the lists are parsed in memory, as smaller
 * lists always are (and then saved when big enough). `lean`: as lh_snapshot_load's. Returns
 * 0, or -1 with err. */
int lh_snapshot_load_lists(lh_blockset *b, const lh_config *cfg, size_t expected_names, bool lean,
                           lh_parse_fn parse, void *ctx, char *err, size_t errlen);

#endif
