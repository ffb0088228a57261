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

#endif
