/* clip_tokenizer.h - the CLIP byte-level BPE tokenizer used by Stable Diffusion.
 *
 * Gives the same ids as the reference A1111 uses: transformers' slow
 * CLIPTokenizer (transformers 4.x; A1111 pins 4.30) in the configuration
 * where ftfy is NOT installed. In that configuration the reference cleans
 * text with BERT's BasicTokenizer(strip_accents=False, do_split_on_punc=False):
 *
 *   1. "<|startoftext|>" / "<|endoftext|>" written literally are split off
 *      first and become 49406 / 49407 (added-token handling);
 *   2. NUL, U+FFFD and every category C* code point except \t \n \r are
 *      removed; \t \n \r and category Zs become a space;
 *   3. a space is put around each CJK ideograph (BERT's _is_chinese_char);
 *   4. NFC normalization;
 *   5. split on Python whitespace, lower-case each piece with str.lower()
 *      (full mappings, final sigma), re-join with single spaces;
 *   6. the CLIP pattern (regex module, IGNORECASE)
 *      <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *   7. each piece: UTF-8 bytes -> bytes_to_unicode symbols, last one + "</w>",
 *      BPE by merge rank, symbols -> vocabulary ids (unknown -> id of
 *      "<|endoftext|>").
 *
 * Input bytes that are not valid UTF-8 are decoded as Python's
 * errors="replace" would, and the resulting U+FFFD is then removed by step 2,
 * so invalid bytes simply vanish. Unicode data: see unicode_tables.c (Python
 * 3.11 unicodedata 14.0.0 for steps 2-5, regex-module classes for step 6).
 * (With ftfy installed the reference instead does ftfy.fix_text, whitespace
 * collapse and lower(); it then differs on CJK spacing, control characters
 * and whatever ftfy repairs.)
 *
 * A ttok_tokenizer is immutable after loading: ttok_encode may be called
 * from several threads at once. There is no cache and no global state.
 *
 * Errors: functions returning int return 0 on success and -1 on failure with
 * a message in err (errlen bytes; err may be NULL).
 */
#ifndef TESSERA_CLIP_TOKENIZER_H
#define TESSERA_CLIP_TOKENIZER_H

#include <stddef.h>

#define TTOK_VOCAB_SIZE 49408
#define TTOK_BOS 49406
#define TTOK_EOS 49407
/* merges used by the reference from bpe_simple_vocab_16e6.txt.gz */
#define TTOK_GZ_MERGES (49152 - 256 - 2)

typedef struct ttok_tokenizer ttok_tokenizer;

/* Loads bpe_simple_vocab_16e6.txt.gz: header line, then the first 48894
 * merge lines; vocab = 256 byte symbols, the same with "</w>", the merges,
 * "<|startoftext|>", "<|endoftext|>". */
int ttok_load_bpe_gz(const char *path, ttok_tokenizer **out, char *err, size_t errlen);

/* Loads a diffusers/transformers tokenizer folder's vocab.json + merges.txt
 * (merges.txt: "#version" header, then the first 48894 lines are used, as
 * the reference does). */
int ttok_load_json(const char *vocab_path, const char *merges_path, ttok_tokenizer **out,
                   char *err, size_t errlen);

void ttok_free(ttok_tokenizer *tok);

/* Tokenizes utf8[0..len) without BOS/EOS. Writes at most cap ids and sets
 * *n to the total number of ids the text produces; fails (with *n set) when
 * that is more than cap. */
int ttok_encode(const ttok_tokenizer *tok, const char *utf8, size_t len, int *ids, size_t cap,
                size_t *n, char *err, size_t errlen);

/* Number of vocabulary entries, and the special ids of this vocabulary. */
int ttok_vocab_size(const ttok_tokenizer *tok);
int ttok_bos_id(const ttok_tokenizer *tok);
int ttok_eos_id(const ttok_tokenizer *tok);
/* Id of a vocabulary string (e.g. ",</w>"), or -1. */
int ttok_token_id(const ttok_tokenizer *tok, const char *s);
/* Vocabulary string of an id (byte-level symbols, e.g. "hello</w>"), or NULL. */
const char *ttok_token_str(const ttok_tokenizer *tok, int id);
/* Number of merges and the i-th merge "a b" parts (for writing merges.txt). */
size_t ttok_merge_count(const ttok_tokenizer *tok);
int ttok_merge_parts(const ttok_tokenizer *tok, size_t i, const char **a, const char **b);

/* Debugging: ids back to text (symbols -> bytes, "</w>" -> space, trailing
 * space removed). Writes a NUL-terminated string of at most cap bytes and
 * returns the full length it needed. */
size_t ttok_decode(const ttok_tokenizer *tok, const int *ids, size_t n, char *out, size_t cap);

#endif
