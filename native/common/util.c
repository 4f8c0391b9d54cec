#include "util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

_Thread_local char g_err[1024];

static void vfail(int errnum, const char *fmt, va_list ap)
{
	int n = vsnprintf(g_err, sizeof g_err, fmt, ap);
	if (errnum && n >= 0 && (size_t)n < sizeof g_err)
		snprintf(g_err + n, sizeof g_err - n, ": %s", strerror(errnum));
}

int fail(int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(errnum, fmt, ap);
	va_end(ap);
	return errnum > 0 ? -errnum : -EINVAL;
}

int fail_ctx(int ret, const char *fmt, ...)
{
	char prev[sizeof g_err];
	memcpy(prev, g_err, sizeof prev);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(g_err, sizeof g_err, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof g_err)
		snprintf(g_err + n, sizeof g_err - n, ": %s", prev);
	return ret;
}

void free_ptr(void *p) { free(*(void **)p); }
void close_ptr(const int *fd) { if (*fd >= 0) close(*fd); }
void fclose_ptr(FILE **f) { if (*f) fclose(*f); }
void closedir_ptr(DIR **d) { if (*d) closedir(*d); }
void close_pair(int (*fds)[2])
{
	for (int i = 0; i < 2; i++)
		if ((*fds)[i] >= 0)
			close((*fds)[i]);
}

int read_file_at(int dirfd, const char *path, char **out, size_t *len)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, "open `%s`", path);
	size_t cap = 4096, n = 0;
	cleanup_free char *p = malloc(cap + 1);
	if (!p)
		return fail(ENOMEM, "read `%s`", path);
	for (;;) {
		if (n == cap) {
			char *q = realloc(p, cap * 2 + 1);
			if (!q)
				return fail(ENOMEM, "read `%s`", path);
			p = q;
			cap *= 2;
		}
		ssize_t r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail(errno, "read `%s`", path);
		if (r == 0)
			break;
		n += r;
	}
	p[n] = 0;
	if (len)
		*len = n;
	*out = move_ptr(&p);
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		len -= r;
	}
	return 0;
}

int write_file_at(int dirfd, const char *path, const char *data, size_t len)
{
	cleanup_close int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, "open `%s`", path);
	int r = write_all(fd, data, len);
	if (r < 0)
		return fail(-r, "write `%s` to `%s`", data, path);
	return 0;
}

int write_str_at(int dirfd, const char *path, const char *fmt, ...)
{
	char s[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s, sizeof s, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof s)
		return fail(E2BIG, "value for `%s`", path);
	return write_file_at(dirfd, path, s, n);
}

/* Readers never see a half-written file: write a sibling, fsync-free (tmpfs under /run), rename. */
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	cleanup_free char *tmp = xasprintf("%s.tmp%d", path, getpid());
	cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return fail(errno, "create `%s`", tmp);
	int r = write_all(fd, data, len);
	if (r < 0) {
		unlink(tmp);
		return fail(-r, "write `%s`", tmp);
	}
	if (rename(tmp, path) < 0) {
		r = errno;
		unlink(tmp);
		return fail(r, "rename `%s`", path);
	}
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	cleanup_free char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return fail(errno, "mkdir `%s`", p);
		if (!c)
			return 0;
		*s = c;
	}
}

void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		abort();
	return p;
}

void *xzalloc(size_t n)
{
	void *p = calloc(1, n);
	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (!r)
		abort();
	return r;
}

char *xasprintf(const char *fmt, ...)
{
	char *r;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&r, fmt, ap) < 0)
		abort();
	va_end(ap);
	return r;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if ((size_t)n < room) {
			b->len += n;
			return;
		}
		b->cap = (b->cap + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
}

void buf_json_str(struct buf *b, const char *s)
{
	buf_printf(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			buf_printf(b, "\\n");
		else if (*p < 0x20)
			buf_printf(b, "\\u%04x", *p);
		else
			buf_printf(b, "%c", *p);
	}
	buf_printf(b, "\"");
}

void buf_free(struct buf *b) { free(b->p); }

static int log_fd = -1;
static bool log_json, log_dbg;

void log_open(const char *path, bool json, bool debug)
{
	log_json = json;
	log_dbg = debug;
	if (path)
		log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

size_t rfc3339(const struct timespec *ts, int digits, char *out, size_t len)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	int w = digits == 3 ? snprintf(out + n, len - n, ".%03ldZ", ts->tv_nsec / 1000000)
			    : snprintf(out + n, len - n, ".%09ldZ", ts->tv_nsec);
	return w > 0 && (size_t)w < len - n ? n + w : n;
}

static void log_line(const char *level, const char *msg)
{
	if (log_fd < 0)
		return;
	struct timespec ts;
	char t[64];
	clock_gettime(CLOCK_REALTIME, &ts);
	rfc3339(&ts, 9, t, sizeof t);
	cleanup_buf struct buf b = {0};
	if (log_json) {
		buf_printf(&b, "{\"level\":\"%s\",\"msg\":", level);
		buf_json_str(&b, msg);
		buf_printf(&b, ",\"time\":\"%s\"}\n", t);
	} else {
		buf_printf(&b, "time=\"%s\" level=%s msg=", t, level);
		buf_json_str(&b, msg);
		buf_printf(&b, "\n");
	}
	(void)write_all(log_fd, b.p, b.len);
}

void log_error(const char *msg)
{
	fprintf(stderr, "berth-runtime: %s\n", msg);
	log_line("error", msg);
}

void log_debug(const char *fmt, ...)
{
	if (!log_dbg)
		return;
	char m[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	log_line("debug", m);
}
