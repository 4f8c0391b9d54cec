#include "options.h"

#include "json.h"
#include "pb.h"
#include "util.h"

#include <fcntl.h>
#include <libgen.h>

#define OPTIONS_TYPE "containerd.runc.v1.Options"
#define BUNDLE_FILE "berth-shim.json"
/* containerd.runc.v1.Options field numbers (proto/containerd/runtime/v2/runc/options/oci.proto). */
enum { OPT_BINARY_NAME = 6, OPT_ROOT = 7 };

static char *default_binary(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		const char *dir = dirname(exe);
		/* Installed side by side, or the checkout's bin/ seen from the shim's build directory. */
		const char *fmts[] = { "%s/berth-runtime", "%s/../../bin/berth-runtime" };
		for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
			char *candidate = xasprintf(fmts[i], dir);
			if (access(candidate, X_OK) == 0)
				return candidate;
			free(candidate);
		}
	}
	return xstrdup("berth-runtime");
}

void options_default(struct runtime_options *o)
{
	*o = (struct runtime_options){ .binary = default_binary() };
}

void options_free(struct runtime_options *o)
{
	free(o->binary);
	free(o->root);
	*o = (struct runtime_options){0};
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* Fills what `value` sets; the caller has put the defaults in already. */
static int decode_options(const uint8_t *value, size_t len, struct runtime_options *o)
{
	cleanup_free char *binary = NULL, *root = NULL;
	pb_reader rd = pb_reader_of(value, len);
	pb_field f;
	int r;
	while ((r = pb_next(&rd, &f)) > 0) {
		if (f.number == OPT_BINARY_NAME)
			r = pb_string(&f, &binary);
		else if (f.number == OPT_ROOT)
			r = pb_string(&f, &root);
		if (r < 0)
			return fail_ctx(r, OPTIONS_TYPE);
	}
	if (r < 0)
		return fail_ctx(r, OPTIONS_TYPE);
	if (binary && *binary) {
		free(o->binary);
		o->binary = move_ptr(&binary);
	}
	if (root && *root)
		o->root = move_ptr(&root);
	return 0;
}

int options_from_any_fields(const char *type_url, const uint8_t *value, size_t len, struct runtime_options *o)
{
	options_default(o);
	if (!type_url || !ends_with(type_url, OPTIONS_TYPE) || !len)
		return 0;
	int r = decode_options(value, len, o);
	if (r < 0)
		options_free(o);
	return r;
}

int options_from_any(const uint8_t *any, size_t len, struct runtime_options *o)
{
	cleanup_free char *type_url = NULL;
	const uint8_t *value = NULL;
	size_t value_len = 0;
	pb_reader rd = pb_reader_of(any, len);
	pb_field f;
	int r;
	while ((r = pb_next(&rd, &f)) > 0) {
		if (f.number == 1 && (r = pb_string(&f, &type_url)) < 0)
			return fail_ctx(r, "runtime options");
		if (f.number == 2) {
			if (f.wire != PB_LEN)
				return fail(EBADMSG, "runtime options: Any.value is not bytes");
			value = f.data;
			value_len = f.len;
		}
	}
	if (r < 0)
		return fail_ctx(r, "runtime options");
	return options_from_any_fields(type_url, value, value_len, o);
}

/* Defaults are not written: options_load gives them back for a missing file, and the file would
 * be one more inode per task (docs/shim.md, "Files per task"). */
int options_save(const char *bundle, const struct runtime_options *o)
{
	cleanup_free char *path = xasprintf("%s/" BUNDLE_FILE, bundle);
	cleanup_free char *def = default_binary();
	if (!o->root && !strcmp(o->binary, def))
		return unlink(path) == 0 || errno == ENOENT ? 0 : fail(errno, "remove `%s`", path);
	cleanup_buf struct buf b = {0};
	buf_printf(&b, "{\"binaryName\":");
	buf_json_str(&b, o->binary);
	buf_printf(&b, ",\"root\":");
	buf_json_str(&b, o->root ? o->root : "");
	buf_printf(&b, "}");
	return write_file_atomic(path, b.p, b.len, 0644);
}

void options_load(const char *bundle, struct runtime_options *o)
{
	options_default(o);
	cleanup_free char *path = xasprintf("%s/" BUNDLE_FILE, bundle);
	cleanup_free char *text = NULL;
	size_t len;
	if (read_file_at(AT_FDCWD, path, &text, &len) < 0)
		return;
	cleanup_json struct jdoc doc = {0};
	const char *binary = NULL, *root = NULL;
	if (json_parse(&doc, text, len) < 0 || jstr(doc.root, "binaryName", &binary) < 0 ||
	    jstr(doc.root, "root", &root) < 0)
		return;
	if (binary && *binary) {
		free(o->binary);
		o->binary = xstrdup(binary);
	}
	if (root && *root)
		o->root = xstrdup(root);
}
