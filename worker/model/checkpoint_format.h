/* checkpoint_format.h - tell safetensors checkpoints from pickle ones.
 *
 * Tessera loads only .safetensors. PyTorch's .ckpt/.pt/.pth/.bin files are
 * Python pickles (inside a zip since torch 1.6): unpickling can import and
 * call arbitrary Python functions, so a downloaded checkpoint can run code on
 * the worker. Rather than try to prove a pickle reader never executes
 * anything, Tessera refuses them and tells the user how to convert.
 */
#ifndef TESSERA_CHECKPOINT_FORMAT_H
#define TESSERA_CHECKPOINT_FORMAT_H

#include <stddef.h>

typedef enum {
    TCF_UNKNOWN = 0,  /* unreadable, or neither content nor name says */
    TCF_SAFETENSORS,  /* safetensors header shape, or a .safetensors name */
    TCF_PICKLE,       /* zip or pickle magic, or a .ckpt/.pt/.pth/.bin name */
} tcf_format;

/* Decide by the first bytes (magic wins) and then by the file name. */
tcf_format tcf_detect(const char *path);
/* The same decision from bytes already read (head, len) and a name (may be NULL). */
tcf_format tcf_detect_bytes(const void *head, size_t len, const char *name);

const char *tcf_format_name(tcf_format f); /* "safetensors", "pickle", "unknown" */

/* Write the message shown when path is refused because it is a pickle:
 * why, and the one-line conversion command. Returns the message length that
 * was needed (like snprintf). */
int tcf_pickle_message(const char *path, char *buf, size_t len);

/* The check loaders call before tst_open: nonzero when path must not be
 * loaded because it is a pickle, with tcf_pickle_message in err; 0 otherwise
 * (safetensors or unknown: tst_open then gives its own error if needed). */
int tcf_refuse_unsafe(const char *path, char *err, size_t errlen);

#endif
