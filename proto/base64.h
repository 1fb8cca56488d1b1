/*
 * base64.h -- standard (RFC 4648 section 4) base64 for images in JSON.
 *
 * The A1111-compatible API carries init images, masks and results as base64
 * strings.  Clients are sloppy: some send a "data:image/png;base64," URL
 * prefix, some wrap lines, some drop the '=' padding.  The decoder accepts
 * all of that, and rejects anything else with the offset of the first bad
 * character so that the HTTP error can point at it.
 *
 * Functions returning int return 0 on success and -1 on error with the
 * reason in err (which may be NULL).
 */
#ifndef TESSERA_BASE64_H
#define TESSERA_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of n bytes, without the terminating NUL;
 * SIZE_MAX if it would overflow. */
size_t tb64_encoded_len(size_t n);

/* Encode with padding, no line breaks.  *out is a malloc'ed NUL-terminated
 * string; *outlen (may be NULL) its length. */
int tb64_encode(const uint8_t *in, size_t len, char **out, size_t *outlen,
                char *err, size_t errlen);

/* Decode in[0..len).  Accepts an optional "data:<type>;base64," prefix,
 * ignores ASCII whitespace anywhere, accepts missing padding.  Rejects
 * characters outside the standard alphabet, '=' followed by data, a lone
 * trailing character, and wrong amounts of padding.  The output size is
 * computed before allocating.  *out is malloc'ed (never NULL on success,
 * even for empty output); *outlen its length. */
int tb64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen,
                char *err, size_t errlen);

#endif
