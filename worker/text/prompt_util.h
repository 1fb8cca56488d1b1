/* prompt_util.h - small helpers shared by the prompt_*.c files (internal).
 *
 * A growable byte buffer, error formatting, and Python `re` character
 * classes (\s, \w, \d) evaluated on UTF-8 at a byte offset. Invalid UTF-8
 * reads as one U+FFFD per bad byte, which is in none of those classes.
 */
#ifndef TESSERA_PROMPT_UTIL_H
#define TESSERA_PROMPT_UTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} tpr_buf;

void tpr_buf_add(tpr_buf *b, const char *s, size_t n);
/* Returns the NUL-terminated contents (owned by the caller) or NULL on OOM. */
char *tpr_buf_take(tpr_buf *b);
char *tpr_strndup(const char *s, size_t n);
void tpr_seterr(char *err, size_t errlen, const char *fmt, ...);

/* Code point at s[i] (i < n) and its byte length. */
uint32_t tpr_cp_at(const char *s, size_t n, size_t i, size_t *len);
/* Code point ending just before s[i] (i > 0) and its byte length. */
uint32_t tpr_cp_before(const char *s, size_t i, size_t *len);
int tpr_is_space(uint32_t cp); /* re \s */
int tpr_is_word(uint32_t cp);  /* re \w */
int tpr_digit(uint32_t cp);    /* re \d: value 0-9 or -1 */
/* Python float() of a string made of an optional sign, '.', and \d digits
 * (the only strings the A1111 regexes hand to float()). -1 if invalid. */
int tpr_parse_float(const char *s, size_t n, double *out);

#endif
