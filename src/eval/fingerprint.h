/* fingerprint.h - cheap fingerprints of input files (models, data, vectors),
 * recorded in run files so that a run resumes only with the same inputs. */
#ifndef KVS_FINGERPRINT_H
#define KVS_FINGERPRINT_H
#include "kvsteer.h"

/* FNV-1a 64 over the file size and its first and last 16 MiB (the whole file
 * when smaller than 32 MiB), as 16 hex digits.  Not a cryptographic hash:
 * hashing whole multi-GiB models on every run would cost more than it buys. */
#define EVAL_FINGERPRINT_METHOD "fnv1a64(size, first 16 MiB, last 16 MiB)"
int eval_file_fingerprint(const char *path, char out[17], kvs_error *err);

/* The arithmetic this binary does on model m, as 16 hex digits: FNV-1a 64 over
 * the bits of the logits after 7 fixed tokens prefilled together, then after
 * one more decoded alone (the two product paths: several activation rows, and
 * one).  Two
 * runs with the same value computed every logit alike; a kernel change that
 * moves a float rounding changes it, and with it greedy answers at near-ties,
 * so run files record it and do not mix two.  Independent of the thread count
 * and batch, as the kernels are. */
#define EVAL_NUMERICS_METHOD "fnv1a64(logits after 7 fixed tokens prefilled, then after 1 decoded)"
int eval_numerics_fingerprint(const kvs_model *m, int n_threads, int kv_f16, char out[17], kvs_error *err);

#endif
