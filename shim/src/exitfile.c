#include "exitfile.h"

#include "json.h"
#include "util.h"

#include <fcntl.h>
#include <time.h>

static char *exit_path(const char *bundle, const char *exec_id)
{
	return exec_id && *exec_id ? xasprintf("%s/exit-exec-%s.json", bundle, exec_id)
				   : xasprintf("%s/exit-init.json", bundle);
}

/* As JavaScript's Date.prototype.toISOString, which the daemon's reader was written against. */
static void iso_ms(int64_t unix_ns, char out[32])
{
	struct timespec ts = { .tv_sec = unix_ns / 1000000000, .tv_nsec = unix_ns % 1000000000 };
	rfc3339(&ts, 3, out, 32);
}

int exitfile_write(const char *bundle, const char *exec_id, const struct exit_record *r)
{
	char at[32];
	iso_ms(r->exited_at_ns, at);
	cleanup_buf struct buf b = {0};
	buf_printf(&b, "{\"pid\":%d,\"status\":%d,\"signal\":%d,\"exitedAt\":\"%s\"}", (int)r->pid, r->status,
		   r->signal, at);
	cleanup_free char *path = exit_path(bundle, exec_id);
	return write_file_atomic(path, b.p, b.len, 0644);
}

/* "2026-11-30T08:01:02.345Z", with any number of fraction digits. */
static int parse_iso(const char *s, int64_t *unix_ns)
{
	struct tm tm = {0};
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -EINVAL;
	int64_t frac = 0, scale = 1000000000;
	if (*rest == '.')
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			if (scale > 1) {
				scale /= 10;
				frac += (*rest - '0') * scale;
			}
	if (strcmp(rest, "Z") != 0)
		return -EINVAL;
	*unix_ns = (int64_t)timegm(&tm) * 1000000000 + frac;
	return 0;
}

int exitfile_read(const char *bundle, const char *exec_id, struct exit_record *r)
{
	cleanup_free char *path = exit_path(bundle, exec_id);
	cleanup_free char *text = NULL;
	size_t len;
	if (read_file_at(AT_FDCWD, path, &text, &len) < 0)
		return -ENOENT;
	cleanup_json struct jdoc doc = {0};
	if (json_parse(&doc, text, len) < 0 || doc.root->type != J_OBJ)
		return -ENOENT;
	int64_t pid = 0, status = 0, sig = 0, at_ns;
	const char *at = "";
	if (jint(doc.root, "pid", 0, INT32_MAX, &pid, NULL) < 0 ||
	    jint(doc.root, "status", INT32_MIN, INT32_MAX, &status, NULL) < 0 ||
	    jint(doc.root, "signal", 0, INT32_MAX, &sig, NULL) < 0 || jstr(doc.root, "exitedAt", &at) < 0 ||
	    parse_iso(at, &at_ns) < 0)
		return -ENOENT;
	*r = (struct exit_record){ .pid = pid, .status = status, .signal = sig, .exited_at_ns = at_ns };
	return 0;
}
