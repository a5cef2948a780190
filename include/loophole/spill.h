/* spill.h - builds the name tree of big lists on disk (an external sort), so that a reload
 * holds little more than the policy it replaces.
 *
 * The in-memory build (nametree.c) keeps every node record and an index over them until the
 * freeze: with the old policy still serving, a reload of a 1M-name list peaked at twice the
 * steady RSS. Here the parse appends one record per node a rule needs (the name and its
 * parent suffixes, the parents deduplicated through a small cache) to a bounded run buffer;
 * a full buffer is sorted by the suffix hash, its duplicates merged, and written with write(2)
 * to an unnamed temporary file (O_TMPFILE: nothing is left behind by a crash). lh_spill_seal
 * merges the runs (k-way) into one stream of unique nodes in hash order, which is bucket order
 * for any bucket count, so every node's place in the frozen records is the running sum of the
 * sizes before it; the parents' places go to a table sorted by hash. lh_spill_write merges
 * the runs again and streams the directory and the records of the frozen tree (nametree.h's
 * layout) into the snapshot file. Memory: the run buffer (LH_SPILL_RUN_BYTES and its index),
 * a read buffer per run while merging, and 12 bytes per node that is a parent of another.
 * Disk: the runs, about 35 bytes a name.
 *
 * Nodes are told apart by their 64-bit suffix hash (a child names its parent by the parent's
 * hash). Two different nodes with the same hash are detected while merging (they sort next to
 * each other) and reported as a collision: the caller then builds in memory, which compares
 * labels and stays exact. */
#ifndef LH_SPILL_H
#define LH_SPILL_H

#include "loophole/wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LH_SPILL_RUN_BYTES (4u << 20) /* the run buffer: about 110,000 node records */

typedef struct lh_spill lh_spill;

/* A build whose temporary file is made in `dir`; run_bytes 0 means LH_SPILL_RUN_BYTES (the
 * tests use small runs). Returns NULL with err (the folder cannot hold an unnamed temporary
 * file, out of memory). */
lh_spill *lh_spill_new(const char *dir, size_t run_bytes, char *err, size_t errlen);
void lh_spill_free(lh_spill *s);
/* Adds the rule bits of name `n` (suffix hashes `h`) from list `list`: as lh_nametree_add.
 * Returns 0, or -1 with lh_spill_error set (a write failed, out of memory). */
int lh_spill_add(lh_spill *s, const lh_name *n, const uint64_t *h, uint8_t bits, uint16_t list);
/* Ends the input and merges the runs. Returns 0, or -1 with lh_spill_error set. */
int lh_spill_seal(lh_spill *s);

/* The frozen tree's figures, valid once sealed. */
typedef struct lh_spill_tree {
    size_t nodes, names, recs_len;
    unsigned bits; /* the bucket count lh_nametree_freeze would choose */
} lh_spill_tree;
const lh_spill_tree *lh_spill_tree_of(const lh_spill *s);
/* Writes the sealed tree's directory ((2^bits + 1) u32) at dir_off and its records at
 * recs_off of `fd` (pwrite). Returns 0, or -1 with lh_spill_error set. */
int lh_spill_write(lh_spill *s, int fd, uint64_t dir_off, uint64_t recs_off);

/* Why the last call failed. */
const char *lh_spill_error(const lh_spill *s);
/* Did it fail because two nodes share a hash (the in-memory build is then needed)? */
bool lh_spill_collided(const lh_spill *s);
/* The temporary file's descriptor (for tests that damage it). */
int lh_spill_fd(const lh_spill *s);

#endif
