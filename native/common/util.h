/* Shared by berth-runtime and berth-shim: the error slot, scope cleanup, small file and string
 * utilities. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* One error slot per thread: the failing function fills it and returns -errno; callers add
 * context on the way up. berth-runtime's init sends the final text back to its parent over the
 * sync socket; berth-shim's request threads put it in the ttrpc status. */
extern _Thread_local char g_err[1024];
int fail(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fail_ctx(int ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <dirent.h>
void free_ptr(void *p);
void close_ptr(const int *fd);
void close_pair(int (*fds)[2]);
void fclose_ptr(FILE **f);
void closedir_ptr(DIR **d);
#define cleanup_free __attribute__((cleanup(free_ptr)))
#define cleanup_close __attribute__((cleanup(close_ptr)))
#define cleanup_pair __attribute__((cleanup(close_pair)))
#define cleanup_file __attribute__((cleanup(fclose_ptr)))
#define cleanup_dir __attribute__((cleanup(closedir_ptr)))

static inline int move_fd(int *fd) { int r = *fd; *fd = -1; return r; }
/* Closes *fd if open and marks it closed, for fds a structure owns. */
static inline void close_owned(int *fd) { if (*fd >= 0) close(move_fd(fd)); }
static inline void *move_ptr(void *pp) { void **p = pp; void *r = *p; *p = NULL; return r; }

int read_file_at(int dirfd, const char *path, char **out, size_t *len);
int write_file_at(int dirfd, const char *path, const char *data, size_t len);
int write_str_at(int dirfd, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
int write_all(int fd, const void *buf, size_t len);
void *xmalloc(size_t n);
void *xzalloc(size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable string for producing JSON and messages. */
struct buf { char *p; size_t len, cap; };
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_json_str(struct buf *b, const char *s);
void buf_free(struct buf *b);
#define cleanup_buf __attribute__((cleanup(buf_free)))

/* `ts` as RFC 3339 UTC with 3 or 9 fractional digits ("2026-11-30T08:01:02.345Z"); returns
 * the length written. */
struct timespec;
size_t rfc3339(const struct timespec *ts, int digits, char *out, size_t len);

/* Logging: --log FILE, --log-format json|text, --debug. */
void log_open(const char *path, bool json, bool debug);
void log_error(const char *msg);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
