/* config.h - one configuration mechanism for every Tessera program.
 *
 * Each program describes its settings once, as a table of tcfg_option rows
 * pointing into its own settings struct. Values are then layered, lowest to
 * highest precedence:
 *
 *   1. the default written in the table
 *   2. the INI file named by --config FILE or TESSERA_CONFIG (libinih)
 *   3. environment variables TESSERA_<KEY> (key upper-cased)
 *   4. command-line flags --<key> VALUE or --<key>=VALUE (underscores become dashes)
 *
 * The same table prints --help, so the documentation cannot drift from the code.
 * Unknown INI keys, unknown flags and unparsable values are errors that name
 * the offending key; nothing is silently ignored.
 */
#ifndef TESSERA_CONFIG_H
#define TESSERA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TCFG_STRING,   /* char *, heap-allocated, freed by tcfg_free */
    TCFG_INT,      /* long long */
    TCFG_DOUBLE,   /* double */
    TCFG_BOOL,     /* int: true/false/yes/no/on/off/1/0 */
    TCFG_BYTES,    /* long long: a byte count, suffixes K, M, G, T (powers of 1024) */
} tcfg_type;

typedef struct {
    const char *section;  /* INI section, e.g. "http" */
    const char *key;      /* unique within the program, e.g. "listen" */
    tcfg_type type;
    size_t offset;        /* offsetof(settings struct, field) */
    const char *def;      /* default value, as text; NULL = empty / 0 */
    const char *help;     /* one line */
} tcfg_option;

typedef struct {
    const char *program;      /* "tesserad" */
    const char *summary;      /* one line printed by --help */
    const tcfg_option *options;
    int noptions;
} tcfg_spec;

/* Outcome of tcfg_load. */
typedef enum {
    TCFG_OK = 0,
    TCFG_HELP = 1,     /* --help was given and printed: exit 0 */
    TCFG_ERROR = -1,   /* err holds the message: exit 2 */
} tcfg_result;

/* Fill settings from defaults, file, env and argv. Positional arguments (not
 * starting with "--") are collected into *rest (NULL-terminated array owned by
 * the caller, free with free()) when rest is non-NULL, else they are an error. */
tcfg_result tcfg_load(const tcfg_spec *spec, void *settings, int argc, char **argv,
                      char ***rest, int *nrest, char *err, size_t errlen);

/* Set one option by key from text (used by the loader; exported for tests). */
int tcfg_set(const tcfg_spec *spec, void *settings, const char *key, const char *value,
             char *err, size_t errlen);

void tcfg_print_help(const tcfg_spec *spec, void *out_FILE);
void tcfg_free(const tcfg_spec *spec, void *settings);

/* Parse helpers, exported because job validation and tests use them too. */
int tcfg_parse_bytes(const char *s, long long *out);
int tcfg_parse_bool(const char *s, int *out);

#endif
