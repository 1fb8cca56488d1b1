/* clip_tokenizer.h - the CLIP byte-level BPE tokenizer used by Stable Diffusion.
 *
 * Gives the same ids as the reference A1111 uses: transformers' slow
 * CLIPTokenizer (transformers 4.x; A1111 pins 4.30.2). That class has two
 * text-cleaning paths, chosen by whether ftfy is importable; both exist here.
 *
 * TTOK_MODE_FTFY (the default: what every A1111 install runs, ftfy comes
 * with open_clip; reference ftfy 6.1.1):
 *   1. "<|endoftext|>" written literally is split off first and becomes
 *      49407 (added-token handling); each piece between is cleaned alone;
 *   2. ftfy.fix_text (text_norm.h: HTML entities, mojibake repair, C1
 *      controls, ligatures, full/half width, curly quotes, line breaks,
 *      terminal escapes, control characters, NFC);
 *   3. whitespace_clean: every run of Python-whitespace becomes one space,
 *      then strip; then str.lower() (full mappings, final sigma);
 *   4. the CLIP pattern (regex module, IGNORECASE)
 *      <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *      (a piece "<|startoftext|>" / "<|endoftext|>", however it came about,
 *      e.g. "<|StartOfText|>" or "&lt;|endoftext|&gt;", is that special id);
 *   5. BPE as below.
 *
 * TTOK_MODE_BASIC (ftfy NOT installed): BERT's BasicTokenizer cleaning:
 *   1. "<|endoftext|>" split off as above;
 *   2. NUL, U+FFFD and every category C* code point except \t \n \r are
 *      removed; \t \n \r and category Zs become a space;
 *   3. a space is put around each CJK ideograph (BERT's _is_chinese_char);
 *   4. NFC normalization;
 *   5. split on Python whitespace, lower-case each piece with str.lower()
 *      (full mappings, final sigma), strip accents (NFD, drop Mn), split off
 *      every punctuation character, re-join with single spaces;
 *   6. the CLIP pattern as above.
 *
 * BPE: each piece's UTF-8 bytes -> bytes_to_unicode symbols, last one +
 * "</w>", BPE by merge rank, symbols -> vocabulary ids (unknown -> id of
 * "<|endoftext|>").
 *
 * Input bytes that are not valid UTF-8 are decoded as Python's
 * errors="replace" would (each maximal invalid subpart -> U+FFFD); BASIC then
 * drops the U+FFFD, FTFY keeps and tokenizes it. Unicode data: see
 * unicode_tables.c and text_norm_tables.c (Python 3.11 unicodedata 14.0.0,
 * regex-module classes for the pattern, ftfy 6.1.1 data).
 *
 * A ttok_tokenizer is immutable after loading (and after ttok_set_mode,
 * which must not race with encoding): ttok_encode may be called from
 * several threads at once. There is no cache and no global state.
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

typedef enum {
    TTOK_MODE_FTFY = 0,  /* transformers with ftfy installed (A1111): the default */
    TTOK_MODE_BASIC = 1, /* transformers without ftfy: BasicTokenizer cleaning */
} ttok_mode;

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

/* Text-cleaning mode used by ttok_encode (loaders set TTOK_MODE_FTFY).
 * ttok_set_mode returns -1 for an unknown mode. */
int ttok_set_mode(ttok_tokenizer *tok, ttok_mode mode);
ttok_mode ttok_get_mode(const ttok_tokenizer *tok);

/* Tokenizes utf8[0..len) without BOS/EOS, in the tokenizer's mode. Writes at most cap ids and sets
 * *n to the total number of ids the text produces; fails (with *n set) when
 * that is more than cap. */
int ttok_encode(const ttok_tokenizer *tok, const char *utf8, size_t len, int *ids, size_t cap,
                size_t *n, char *err, size_t errlen);
/* The same with an explicit mode (the tokenizer's own mode is ignored). */
int ttok_encode_mode(const ttok_tokenizer *tok, ttok_mode mode, const char *utf8, size_t len, int *ids,
                     size_t cap, size_t *n, char *err, size_t errlen);

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
