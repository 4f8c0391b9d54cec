#include "shim.h"

#include <time.h>

const char *g_namespace = "";

void shim_log(const char *fmt, ...)
{
	struct timespec ts;
	char line[4096];
	clock_gettime(CLOCK_REALTIME, &ts);
	size_t n = rfc3339(&ts, 3, line, sizeof line);
	line[n++] = ' ';
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n = (size_t)m < sizeof line - n - 1 ? n + m : sizeof line - 2;
	line[n++] = '\n';
	/* One write per line: the log is opened O_APPEND, so lines of concurrent threads never mix. */
	(void)write_all(STDERR_FILENO, line, n);
}

const char *state_dir(void)
{
	const char *d = getenv("BERTH_STATE_DIR");
	return d && *d ? d : "/run/berth";
}

char *runtime_root(const char *ns)
{
	return xasprintf("%s/runtime/%s", state_dir(), ns);
}

char *console_dir(void)
{
	return xasprintf("%s/console", state_dir());
}

int64_t now_unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
