#include "state.h"
#include "cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>

int valid_id(const char *id)
{
	size_t n = strlen(id);
	if (!n || n > 1024 || !strcmp(id, ".") || !strcmp(id, ".."))
		return fail(0, "invalid container id `%s`", id);
	for (const char *p = id; *p; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') || strchr("_+-.", *p)))
			return fail(0, "invalid container id `%s`", id);
	return 0;
}

char *state_dir(const char *root, const char *id) { return xasprintf("%s/%s", root, id); }

int state_load(const char *root, const char *id, struct cstate *st)
{
	int r = valid_id(id);
	if (r < 0)
		return r;
	cleanup_free char *p = xasprintf("%s/%s/state.json", root, id), *text = NULL;
	size_t len;
	if ((r = read_file_at(AT_FDCWD, p, &text, &len)) < 0)
		return r == -ENOENT ? fail(ENOENT, "container `%s` does not exist", id) : r;
	if ((r = json_parse(&st->doc, text, len)) < 0)
		return fail_ctx(r, "%s", p);
	/* The strings now live in the arena; the text buffer can go. */
	const struct jv *o = st->doc.root;
	int64_t pid = 0, start = 0;
	if ((r = jstr(o, "id", &st->id)) < 0 || (r = jstr(o, "bundle", &st->bundle)) < 0 ||
	    (r = jstr(o, "rootfs", &st->rootfs)) < 0 || (r = jstr(o, "created", &st->created)) < 0 ||
	    (r = jstr(o, "status", &st->status)) < 0 || (r = jstr(o, "cgroup", &st->cgroup)) < 0 ||
	    (r = jstr(o, "owner", &st->owner)) < 0 || (r = jint(o, "pid", 0, INT32_MAX, &pid, NULL)) < 0 ||
	    (r = jint(o, "start_time", 0, INT64_MAX, &start, NULL)) < 0 || !st->id || !st->status || !st->cgroup)
		return r < 0 ? fail_ctx(r, "%s", p) : fail(0, "%s: incomplete", p);
	st->pid = pid;
	st->start_time = start;
	return 0;
}

int state_save(const char *dir, const struct cstate *st)
{
	cleanup_buf struct buf b = {0};
	buf_printf(&b, "{\"id\":");
	buf_json_str(&b, st->id);
	buf_printf(&b, ",\"pid\":%d,\"start_time\":%llu,\"status\":\"%s\",\"bundle\":", st->pid,
		   (unsigned long long)st->start_time, st->status);
	buf_json_str(&b, st->bundle);
	buf_printf(&b, ",\"rootfs\":");
	buf_json_str(&b, st->rootfs);
	buf_printf(&b, ",\"cgroup\":");
	buf_json_str(&b, st->cgroup);
	buf_printf(&b, ",\"created\":\"%s\",\"owner\":\"%s\"}\n", st->created, st->owner ? st->owner : "");
	cleanup_free char *p = xasprintf("%s/state.json", dir);
	return write_file_atomic(p, b.p, b.len, 0600);
}

void state_free(struct cstate *st) { json_free(&st->doc); }

uint64_t proc_start_time(pid_t pid, char *state_char)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	cleanup_free char *data = NULL;
	if (read_file_at(AT_FDCWD, p, &data, NULL) < 0)
		return 0;
	/* comm may hold spaces and parentheses: fields restart after the last ')'. */
	char *s = strrchr(data, ')');
	if (!s)
		return 0;
	if (state_char)
		*state_char = s[2];
	unsigned long long v = 0;
	/* Field 22 (starttime) is the 20th after ')'. */
	for (int f = 0; f < 20 && s; f++)
		s = strchr(s + 1, ' ');
	if (s)
		v = strtoull(s + 1, NULL, 10);
	return v;
}

const char *state_status(const char *root, const struct cstate *st)
{
	if (!st->pid)
		return st->status;
	char sc = 0;
	uint64_t start = proc_start_time(st->pid, &sc);
	if (!start || start != st->start_time || sc == 'Z' || sc == 'X')
		return "stopped";
	if (!strcmp(st->status, "creating"))
		return "creating";
	cleanup_free char *fifo = xasprintf("%s/%s/exec.fifo", root, st->id);
	if (access(fifo, F_OK) == 0)
		return "created";
	return cg_frozen(st->cgroup) ? "paused" : "running";
}

void state_json(struct buf *b, const char *root, const struct cstate *st, const char *status, bool pretty, const char *oci)
{
	const char *nl = pretty ? "\n  " : "", *sp = pretty ? " " : "";
	bool alive = strcmp(status, "stopped") != 0;
	buf_printf(b, "{%s\"ociVersion\":%s\"%s\",%s\"id\":%s", nl, sp, oci, nl, sp);
	buf_json_str(b, st->id);
	buf_printf(b, ",%s\"pid\":%s%d,%s\"status\":%s\"%s\",%s\"bundle\":%s", nl, sp, alive ? st->pid : 0, nl, sp, status, nl, sp);
	buf_json_str(b, st->bundle);
	buf_printf(b, ",%s\"rootfs\":%s", nl, sp);
	buf_json_str(b, st->rootfs);
	buf_printf(b, ",%s\"created\":%s\"%s\"", nl, sp, st->created);
	cleanup_free char *cfg = xasprintf("%s/%s/config.json", root, st->id), *text = NULL;
	struct jdoc d cleanup_json = {0};
	size_t len;
	struct jv *ann = NULL;
	if (read_file_at(AT_FDCWD, cfg, &text, &len) == 0 && json_parse(&d, text, len) == 0 &&
	    jtyped(d.root, "annotations", J_OBJ, &ann) == 0 && ann && ann->n) {
		buf_printf(b, ",%s\"annotations\":%s{", nl, sp);
		JFOR(kv, ann) {
			if (kv->type != J_STR)
				continue;
			buf_printf(b, "%s%s%s", kv == ann->child ? "" : ",", pretty ? "\n    " : "", "");
			buf_json_str(b, kv->key);
			buf_printf(b, ":%s", sp);
			buf_json_str(b, kv->s);
		}
		buf_printf(b, "%s}", pretty ? "\n  " : "");
	}
	/* runc's order: annotations, then owner. */
	buf_printf(b, ",%s\"owner\":%s\"\"%s}", nl, sp, pretty ? "\n" : "");
}

void state_hook_json(struct buf *b, const struct jv *annotations, const char *id, const char *status, pid_t pid,
		     const char *bundle)
{
	buf_printf(b, "{\"ociVersion\":\"%s\",\"id\":", "1.1.0");
	buf_json_str(b, id);
	buf_printf(b, ",\"status\":\"%s\",\"pid\":%d,\"bundle\":", status, pid);
	buf_json_str(b, bundle);
	buf_printf(b, ",\"annotations\":{");
	JFOR(kv, annotations) {
		if (kv->type != J_STR)
			continue;
		buf_printf(b, "%s", kv == annotations->child ? "" : ",");
		buf_json_str(b, kv->key);
		buf_printf(b, ":");
		buf_json_str(b, kv->s);
	}
	buf_printf(b, "}}");
}
