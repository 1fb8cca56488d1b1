/* log.h - one-line log records on stderr: "2026-11-22T02:25:06.123Z LEVEL prog: message".
 *
 * The threshold is a value the program's main() owns and passes in
 * (tlog_level_from_name), not global state; the helpers take it explicitly. */
#ifndef TESSERA_LOG_H
#define TESSERA_LOG_H

typedef enum { TLOG_DEBUG, TLOG_INFO, TLOG_WARN, TLOG_ERROR } tlog_level;

typedef struct {
    const char *program;
    tlog_level threshold;
} tlog;

int tlog_level_from_name(const char *name, tlog_level *out);
void tlog_write(const tlog *l, tlog_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
