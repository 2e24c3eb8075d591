/* SPDX-License-Identifier: MIT */
/* log.h: one line per call, to the descriptor the embedder chose. Lines are written
 * through the OS boundary (sys.h): the shim logs from inside its own interposers and
 * the stack from its thread, and neither may re-enter the shim's write(). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "log.h"
#include "sys.h"

static int log_fd = 2;
static enum ts_log_level log_level = TS_LOG_ERROR;

void ts_log_set(int fd, enum ts_log_level level)
{
	log_fd = fd;
	log_level = level;
}

int ts_log_parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

int ts_log_enabled(enum ts_log_level level)
{
	return log_fd >= 0 && level <= log_level;
}

/* One write() per line so lines from several threads and processes do not interleave. */
void ts_log(enum ts_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (!ts_log_enabled(level))
		return;
	n = snprintf(line, sizeof(line), "tunshim[%d]: ", (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (ts_sys()->write(log_fd, line, n) < 0)
		return;
}
