/* conditioning.h - prompt text -> the cross-attention conditioning tensor,
 * as AUTOMATIC1111 builds it for SD1/SD2 (a1111-compat.md 3.1, 3.4, 3.5).
 *
 * For one already-resolved prompt text (after the AND split and the
 * [from:to:when] schedule, which the sampler's conditioning schedule owns):
 *
 *   1. extra-network tags <kind:args> are removed and kept (tcd_cond.extra);
 *   2. emphasis is parsed (tpr_parse_attention), BREAK splits chunks;
 *   3. tokens are chunked 75 -> 77 with the comma backtrack (tpr_chunks_build;
 *      pad id: SD1 = EOS, SD2 = 0 after the first EOS, as A1111 does);
 *   4. all chunks are encoded in one tmt_encode batch (clip skip; A1111
 *      ignores CLIP_stop_at_last_layers for SD2 / OpenCLIP and so do we unless
 *      tcd_opts.sd2_clip_skip is set);
 *   5. "Original" emphasis per chunk, over its whole [77, C] slab:
 *        m0 = mean(z);  z *= w (per token);  z *= m0 / mean(z)
 *      (means in double; "No norm" stops after the multiply, "Ignore" parses
 *      but applies nothing, "None" does not parse at all);
 *   6. chunks are concatenated along the token axis -> [1, 77*k, C].
 *
 * cond/uncond of different lengths (a1111-compat.md 3.3): with
 * opts.pad_cond_uncond A1111 pads the shorter one with copies of the
 * empty-prompt encoding ([1,77,C] each); inside a batch, conds of different
 * lengths are padded by repeating their last token vector. tcd_pad_tokens
 * does either.
 *
 * No global state; the tokenizer is read-only, the encoder is used from the
 * calling thread. Errors: 0 on success, -1 with a message in err. */
#ifndef TESSERA_CONDITIONING_H
#define TESSERA_CONDITIONING_H

#include "clip_text.h"
#include "clip_tokenizer.h"
#include "prompt_parse.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TCD_EMPHASIS_ORIGINAL = 0, /* A1111 default */
    TCD_EMPHASIS_NO_NORM,      /* multiply, no mean restoration */
    TCD_EMPHASIS_IGNORE,       /* parse, but every multiplier is 1 */
    TCD_EMPHASIS_NONE          /* no parsing: the whole text at weight 1, BREAK is plain text */
} tcd_emphasis;

typedef struct tcd_opts {
    int pad_id;          /* -1 (or opts NULL) = by encoder family: SD1 EOS, SD2 0 */
    int comma_backtrack; /* -1 (or opts NULL) = A1111 default 20; 0 disables */
    tcd_emphasis emphasis;
    int sd2_clip_skip;   /* 0 = A1111: SD2 ignores clip skip; 1 = apply it anyway */
} tcd_opts;

/* Defaults: pad -1, backtrack -1, Original emphasis, A1111 SD2 rule. */
tcd_opts tcd_default_opts(void);

typedef struct tcd_cond {
    float *hidden;         /* [1, n_tokens, hidden_size] */
    int32_t *ids;          /* [n_chunks, 77] as fed to the encoder */
    float *mult;           /* [n_chunks, 77] token multipliers */
    int n_chunks;
    int n_tokens;          /* 77 * n_chunks */
    int hidden_size;
    int clip_skip;         /* the clip skip actually used */
    size_t token_count;    /* tokens used, as A1111 counts them (the "75/150" display) */
    tpr_extra_list extra;  /* <lora:...> etc., for the LoRA code */
} tcd_cond;

int tcd_encode_ex(const ttok_tokenizer *tok, tmt_encoder *enc, const char *prompt, int clip_skip,
                  const tcd_opts *opts, tcd_cond *out, char *err, size_t errlen);
void tcd_cond_free(tcd_cond *c);

/* The texts of one prompt schedule encoded as ONE batch, as A1111's
 * get_learned_conditioning does: every text gets the batch's largest chunk
 * count (missing chunks are empty_chunk(): BOS + EOS x 76, weights 1), and
 * the emphasis mean restoration of chunk i runs over all texts' chunk i
 * together. out: n conds (each freed with tcd_cond_free). A batch of one
 * equals tcd_encode_ex. */
int tcd_encode_batch(const ttok_tokenizer *tok, tmt_encoder *enc, const char *const *prompts, int n,
                     int clip_skip, const tcd_opts *opts, tcd_cond *out, char *err, size_t errlen);

/* The short form: *out (malloc'ed, caller frees) = [1, *n_tokens, C]. */
int tcd_encode(const ttok_tokenizer *tok, tmt_encoder *enc, const char *prompt, int clip_skip,
               const tcd_opts *opts, float **out, int *n_tokens, char *err, size_t errlen);

/* Applies the emphasis mode to chunks already encoded: z [n_chunks, 77, C]
 * in place, mult [n_chunks, 77]. Exposed for tests and other encoders. */
void tcd_apply_emphasis(float *z, const float *mult, int n_chunks, int C, tcd_emphasis mode);

/* Grows *z [1, *n_tokens, C] (realloc) to target tokens: with empty77 NULL by
 * repeating the last token vector, else by appending copies of empty77
 * ([77, C], the empty prompt's encoding; target - *n_tokens must then be a
 * multiple of 77). target <= *n_tokens is a no-op. */
int tcd_pad_tokens(float **z, int *n_tokens, int C, int target, const float *empty77, char *err, size_t errlen);

#endif
