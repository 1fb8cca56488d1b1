/* prompt_parse.h - the AUTOMATIC1111 prompt language.
 *
 * Re-implemented from the description in shared/reference/a1111-compat.md
 * section 3 (no upstream code). Pipeline per image prompt, as A1111 runs it:
 *
 *   tpr_extra_networks  strip <kind:args> tags           (prompt_extra.c)
 *   tpr_split_and       AND sub-prompts with :weights    (prompt_extra.c)
 *   tpr_schedules       [from:to:when], [a|b] per step   (prompt_schedule.c)
 *   tpr_parse_attention (emphasis), [de-emphasis], BREAK (prompt_attention.c)
 *   tpr_chunks          75-token chunks, 77 ids + weights (prompt_tokens.c)
 *
 * Strings are UTF-8, owned by the result structs and released by the
 * matching _free function. Invalid UTF-8 never fails a call: it is carried
 * through as bytes (the tokenizer drops it). Regex classes (\s, \w, \d) are
 * Python's Unicode ones, as in A1111. Errors: 0 on success, -1 with a message
 * in err (errlen bytes; err may be NULL); on error the output is empty.
 */
#ifndef TESSERA_PROMPT_PARSE_H
#define TESSERA_PROMPT_PARSE_H

#include <stddef.h>

#include "clip_tokenizer.h"

/* ---- emphasis ---- */

typedef struct {
    char *text;
    double weight; /* exactly -1.0 with text "BREAK" marks a BREAK */
} tpr_frag;

typedef struct {
    tpr_frag *v;
    size_t n;
} tpr_frags;

/* parse_prompt_attention: fragments with merged equal weights; "" gives
 * [("", 1.0)]. Fails only where A1111 raises: a "(x:N)" weight that is not a
 * float (e.g. "1.2.3"). */
int tpr_parse_attention(const char *text, size_t len, tpr_frags *out, char *err, size_t errlen);
void tpr_frags_free(tpr_frags *f);

/* ---- scheduling ---- */

typedef struct {
    int end_at_step;
    char *text;
} tpr_sched_entry;

typedef struct {
    tpr_sched_entry *v;
    size_t n;
} tpr_schedule;

typedef struct {
    int hires_steps;        /* > 0: schedule for the hires pass of that many steps */
    int use_old_scheduling; /* A1111 option of the same name */
} tpr_sched_opts;

/* get_learned_conditioning_prompt_schedules for one prompt: entries sorted
 * by end_at_step; at sampler step t (0-based) use the first entry with
 * t <= end_at_step. A prompt the grammar rejects is one entry (steps,
 * prompt). opts may be NULL. Fails for steps < 1, a "when" out of range
 * (1e999) or nesting deeper than TPR_MAX_DEPTH. */
#define TPR_MAX_DEPTH 200
int tpr_schedules(const char *prompt, int steps, tpr_schedule *out, char *err, size_t errlen);
int tpr_schedules_ex(const char *prompt, int steps, const tpr_sched_opts *opts, tpr_schedule *out,
                     char *err, size_t errlen);
void tpr_schedule_free(tpr_schedule *s);

/* ---- AND (composable diffusion) ---- */

typedef struct {
    char *text;
    double weight;
} tpr_subprompt;

typedef struct {
    tpr_subprompt *v;
    size_t n;
} tpr_and_list;

/* get_multicond_prompt_list for one prompt: split on \bAND\b, each part's
 * trailing ":w" (default 1.0) removed as its weight. */
int tpr_split_and(const char *prompt, tpr_and_list *out, char *err, size_t errlen);
void tpr_and_list_free(tpr_and_list *l);

/* ---- extra networks ---- */

typedef struct {
    char *kind;   /* "lora", "hypernet", ... ("lyco" is kept as written) */
    char **items; /* args split on ':'; items[0] is the name */
    size_t nitems;
} tpr_extra;

typedef struct {
    char *prompt; /* the prompt with every tag removed */
    tpr_extra *v;
    size_t n;
} tpr_extra_list;

/* extra_networks.parse_prompt: every match of <(\w+):([^>]+)> is removed. */
int tpr_extra_networks(const char *prompt, tpr_extra_list *out, char *err, size_t errlen);
void tpr_extra_list_free(tpr_extra_list *l);

/* ---- chunking for the text encoder ---- */

#define TPR_CHUNK_TOKENS 75
#define TPR_CHUNK_LEN 77

typedef struct {
    int pad_id;          /* SD1: 49407 (EOS); SD2/OpenCLIP: 0 */
    int comma_backtrack; /* opts.comma_padding_backtrack, default 20; 0 disables */
} tpr_chunk_opts;

typedef struct {
    int (*ids)[TPR_CHUNK_LEN];     /* n chunks of 77 ids */
    float (*mult)[TPR_CHUNK_LEN];  /* and their multipliers */
    size_t n;
    size_t token_count;            /* tokens used, as A1111 counts them */
} tpr_chunks;

/* Tokenizes the fragments and chunks them like A1111's
 * FrozenCLIPEmbedderWithCustomWords.tokenize_line. opts may be NULL
 * (SD1 defaults). An empty prompt still gives one chunk. */
int tpr_chunks_build(const ttok_tokenizer *tok, const tpr_frags *frags, const tpr_chunk_opts *opts,
                     tpr_chunks *out, char *err, size_t errlen);
/* Convenience: tpr_parse_attention + tpr_chunks_build. */
int tpr_chunks_from_text(const ttok_tokenizer *tok, const char *text, const tpr_chunk_opts *opts,
                         tpr_chunks *out, char *err, size_t errlen);
void tpr_chunks_free(tpr_chunks *c);

#endif
