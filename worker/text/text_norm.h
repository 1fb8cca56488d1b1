/* text_norm.h - ftfy.fix_text (ftfy 6.1.1, default TextFixerConfig) in C.
 *
 * transformers' CLIPTokenizer, when ftfy is installed (every A1111 install:
 * open_clip depends on it), cleans each text with
 *     whitespace_clean(ftfy.fix_text(text)).lower()
 * tn_ftfy_fix_text() is the ftfy.fix_text part, equal to ftfy 6.1.1 with its
 * defaults on Python 3.11 / Unicode 14.0 data (generated into
 * text_norm_tables.c by gen_text_norm_tables.py):
 *
 *   the text is fixed in segments ending after each "\n" (and every 10^6
 *   code points); HTML unescaping ("auto") stops for good at the first
 *   segment containing '<' (ftfy's fix_text rebinds its config there). Each
 *   segment is fixed repeatedly until nothing changes, each round doing:
 *   unescape_html (ftfy's entity regex &#?[0-9A-Za-z]{1,24}; and table,
 *   html.unescape rules for &#...;), fix_encoding (mojibake: badness
 *   heuristic, the nine single-byte encodings, restore_byte_a0,
 *   replace_lossy_sequences, utf-8-variants decoding,
 *   decode_inconsistent_utf8, latin-1 -> windows-1252, C1 controls),
 *   fix_c1_controls, fix_latin_ligatures, fix_character_width,
 *   uncurl_quotes, fix_line_breaks, (fix_surrogates: nothing to do, UTF-8
 *   input has no surrogates), remove_terminal_escapes,
 *   remove_control_chars, NFC.
 *
 * Not reproduced: nothing known (all 1228 golden cases, 346 of them mojibake
 * that fix_encoding changes, match). ftfy 6.3.x differs from 6.1.1 in its
 * mojibake heuristics; see text_norm.c.
 */
#ifndef TESSERA_TEXT_NORM_H
#define TESSERA_TEXT_NORM_H

#include <stddef.h>
#include <stdint.h>

/* ftfy.fix_text of in[0..n) (code points). Returns a malloc'd array of
 * *out_n code points (never NULL on success, even for empty output), or
 * NULL when out of memory. */
uint32_t *tn_ftfy_fix_text(const uint32_t *in, size_t n, size_t *out_n);

/* unicodedata.normalize("NFC"): out needs room for 4*n code points.
 * Returns the output length. */
size_t tn_nfc(const uint32_t *in, size_t n, uint32_t *out);

/* ftfy.badness.is_bad */
int tn_is_bad(const uint32_t *s, size_t n);

#endif
