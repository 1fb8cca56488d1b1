/* config.c - defaults, INI file, TESSERA_* environment and --flags, in that
 * order of precedence, driven by one table per program (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const tcfg_option *find_option(const tcfg_spec *spec, const char *key) {
    for (int i = 0; i < spec->noptions; i++)
        if (strcmp(spec->options[i].key, key) == 0) return &spec->options[i];
    return NULL;
}

int tcfg_parse_bool(const char *s, int *out) {
    if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

int tcfg_parse_bytes(const char *s, long long *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return -1;
    while (*end == ' ') end++;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'B': break;
    case 'K': mul = 1024.0; break;
    case 'M': mul = 1024.0 * 1024; break;
    case 'G': mul = 1024.0 * 1024 * 1024; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
    default: return -1;
    }
    if (*end) {
        end++;
        if (toupper((unsigned char)*end) == 'I') end++;
        if (toupper((unsigned char)*end) == 'B') end++;
        if (*end) return -1;
    }
    double r = v * mul;
    if (r > 9.2e18) return -1;
    *out = (long long)r;
    return 0;
}

int tcfg_set(const tcfg_spec *spec, void *settings, const char *key, const char *value,
             char *err, size_t errlen) {
    const tcfg_option *o = find_option(spec, key);
    if (!o) {
        snprintf(err, errlen, "unknown setting '%s' (see %s --help)", key, spec->program);
        return -1;
    }
    char *field = (char *)settings + o->offset;
    char *end;
    switch (o->type) {
    case TCFG_STRING: {
        char *dup = strdup(value ? value : "");
        if (!dup) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(*(char **)field);
        *(char **)field = dup;
        return 0;
    }
    case TCFG_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || errno) break;
        *(long long *)field = v;
        return 0;
    }
    case TCFG_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end || errno) break;
        *(double *)field = v;
        return 0;
    }
    case TCFG_BOOL: {
        int b;
        if (tcfg_parse_bool(value, &b)) break;
        *(int *)field = b;
        return 0;
    }
    case TCFG_BYTES: {
        long long v;
        if (tcfg_parse_bytes(value, &v)) break;
        *(long long *)field = v;
        return 0;
    }
    }
    static const char *kind[] = {"text", "an integer", "a number", "a boolean (true/false)",
                                 "a size such as 512M or 2G"};
    snprintf(err, errlen, "setting '%s': '%s' is not %s", key, value, kind[o->type]);
    return -1;
}

typedef struct {
    const tcfg_spec *spec;
    void *settings;
    char *err;
    size_t errlen;
    const char *path;
    int failed;
} ini_ctx;

static int on_ini_value(void *user, const char *section, const char *name, const char *value) {
    ini_ctx *c = user;
    if (c->failed) return 0;
    const tcfg_option *o = find_option(c->spec, name);
    if (!o || (section[0] && strcmp(section, o->section) != 0)) {
        snprintf(c->err, c->errlen, "%s: unknown setting [%s] %s", c->path, section, name);
        c->failed = 1;
        return 0;
    }
    char sub[512];
    if (tcfg_set(c->spec, c->settings, name, value, sub, sizeof sub)) {
        snprintf(c->err, c->errlen, "%s: %s", c->path, sub);
        c->failed = 1;
        return 0;
    }
    return 1;
}

static void env_name(const char *key, char *out, size_t n) {
    snprintf(out, n, "TESSERA_%s", key);
    for (char *p = out; *p; p++) *p = (char)toupper((unsigned char)*p);
}

static void flag_to_key(char *key) {
    for (char *p = key; *p; p++)
        if (*p == '-') *p = '_';
}

tcfg_result tcfg_load(const tcfg_spec *spec, void *settings, int argc, char **argv,
                      char ***rest, int *nrest, char *err, size_t errlen) {
    /* 1. defaults */
    for (int i = 0; i < spec->noptions; i++) {
        const tcfg_option *o = &spec->options[i];
        const char *d = o->def ? o->def : (o->type == TCFG_STRING ? "" : "0");
        if (tcfg_set(spec, settings, o->key, d, err, errlen)) return TCFG_ERROR;
    }
    /* find --config and --help first */
    const char *config_path = getenv("TESSERA_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            tcfg_print_help(spec, stdout);
            return TCFG_HELP;
        }
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config needs a file name");
                return TCFG_ERROR;
            }
            config_path = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config_path = argv[i] + 9;
        }
    }
    /* 2. INI file */
    if (config_path && config_path[0]) {
        ini_ctx c = {spec, settings, err, errlen, config_path, 0};
        int rc = ini_parse(config_path, on_ini_value, &c);
        if (c.failed) return TCFG_ERROR;
        if (rc == -1) {
            snprintf(err, errlen, "cannot open config file %s: %s", config_path, strerror(errno));
            return TCFG_ERROR;
        }
        if (rc != 0) {
            snprintf(err, errlen, "%s: syntax error on line %d", config_path, rc);
            return TCFG_ERROR;
        }
    }
    /* 3. environment */
    for (int i = 0; i < spec->noptions; i++) {
        char name[160], sub[512];
        env_name(spec->options[i].key, name, sizeof name);
        const char *v = getenv(name);
        if (v && tcfg_set(spec, settings, spec->options[i].key, v, sub, sizeof sub)) {
            snprintf(err, errlen, "environment %s: %s", name, sub);
            return TCFG_ERROR;
        }
    }
    /* 4. flags */
    char **pos = NULL;
    int npos = 0;
    if (rest) {
        pos = calloc((size_t)argc + 1, sizeof *pos);
        if (!pos) {
            snprintf(err, errlen, "out of memory");
            return TCFG_ERROR;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (!rest) {
                snprintf(err, errlen, "unexpected argument '%s' (see %s --help)", a, spec->program);
                return TCFG_ERROR;
            }
            pos[npos++] = argv[i];
            continue;
        }
        char key[128];
        const char *value = NULL;
        const char *eq = strchr(a + 2, '=');
        if (eq) {
            size_t kl = (size_t)(eq - (a + 2));
            if (kl >= sizeof key) kl = sizeof key - 1;
            memcpy(key, a + 2, kl);
            key[kl] = 0;
            flag_to_key(key);
            value = eq + 1;
        } else {
            snprintf(key, sizeof key, "%s", a + 2);
            flag_to_key(key);
        }
        if (!strcmp(key, "config")) {
            if (!eq) i++;
            continue;
        }
        const tcfg_option *o = find_option(spec, key);
        if (!o) {
            if (rest) {
                /* leave unknown flags to the caller (sub-commands) */
                pos[npos++] = argv[i];
                continue;
            }
            snprintf(err, errlen, "unknown flag '%s' (see %s --help)", a, spec->program);
            free(pos);
            return TCFG_ERROR;
        }
        if (!value) {
            if (o->type == TCFG_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0 ||
                                         tcfg_parse_bool(argv[i + 1], &(int){0}) != 0)) {
                value = "true";
            } else if (i + 1 >= argc) {
                snprintf(err, errlen, "flag %s needs a value", a);
                free(pos);
                return TCFG_ERROR;
            } else {
                value = argv[++i];
            }
        }
        char sub[512];
        if (tcfg_set(spec, settings, key, value, sub, sizeof sub)) {
            snprintf(err, errlen, "flag %s: %s", a, sub);
            free(pos);
            return TCFG_ERROR;
        }
    }
    if (rest) {
        *rest = pos;
        *nrest = npos;
    }
    return TCFG_OK;
}

void tcfg_print_help(const tcfg_spec *spec, void *out_FILE) {
    FILE *out = out_FILE;
    fprintf(out, "%s - %s\n\n", spec->program, spec->summary);
    fprintf(out, "Usage: %s [--config FILE] [--KEY VALUE ...]\n\n", spec->program);
    fprintf(out, "Every setting can be given, from lowest to highest precedence, as a default,\n"
                 "in the INI file (--config FILE or TESSERA_CONFIG), as an environment variable\n"
                 "TESSERA_<KEY>, or as a flag --<key>.\n\n");
    const char *section = NULL;
    for (int i = 0; i < spec->noptions; i++) {
        const tcfg_option *o = &spec->options[i];
        if (!section || strcmp(section, o->section)) {
            section = o->section;
            fprintf(out, "[%s]\n", section);
        }
        char flag[128], env[160];
        snprintf(flag, sizeof flag, "%s", o->key);
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        env_name(o->key, env, sizeof env);
        fprintf(out, "  --%-24s %s\n  %-26s env %s, default: %s\n", flag, o->help, "", env,
                o->def && o->def[0] ? o->def : "(none)");
    }
}

void tcfg_free(const tcfg_spec *spec, void *settings) {
    for (int i = 0; i < spec->noptions; i++) {
        const tcfg_option *o = &spec->options[i];
        if (o->type == TCFG_STRING) {
            char **f = (char **)((char *)settings + o->offset);
            free(*f);
            *f = NULL;
        }
    }
}
