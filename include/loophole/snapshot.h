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
 * `fingerprint`. Returns 0, or -1 with the reason in why (the blockset is then empty again). */
int lh_snapshot_load(lh_blockset *b, const char *path, uint64_t fingerprint, char *why,
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

/* The policy build's use of all this: the lists from the snapshot in cfg's state-dir when it
 * is current, else parsed (then saved when big enough). Returns 0, or -1 with err. */
int lh_snapshot_load_lists(lh_blockset *b, const lh_config *cfg,
                           int (*parse)(void *ctx, char *err, size_t errlen), void *ctx, char *err,
                           size_t errlen);

#endif
