/* SPDX-License-Identifier: MIT */
/* The stack's logging: levels as TUNSHIM_LOG names them, one sink chosen by the
 * embedder (the shim duplicates its log fd at load time). Never logs secrets. */
#ifndef TS_LOG_H
#define TS_LOG_H

enum ts_log_level { TS_LOG_ERROR, TS_LOG_WARN, TS_LOG_INFO, TS_LOG_DEBUG };

/* fd < 0 disables output. The default is stderr (fd 2) at TS_LOG_ERROR. */
void ts_log_set(int fd, enum ts_log_level level);
/* Parses "error|warn|info|debug"; returns -1 when unknown. */
int ts_log_parse_level(const char *s);
int ts_log_enabled(enum ts_log_level level);
void ts_log(enum ts_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ts_err(...) ts_log(TS_LOG_ERROR, __VA_ARGS__)
#define ts_warn(...) ts_log(TS_LOG_WARN, __VA_ARGS__)
#define ts_info(...) ts_log(TS_LOG_INFO, __VA_ARGS__)
#define ts_dbg(...) do { if (ts_log_enabled(TS_LOG_DEBUG)) ts_log(TS_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
