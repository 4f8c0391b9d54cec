/* containerd.runc.v1.Options, the part the shim uses: which OCI runtime binary (binary_name=6)
 * and its --root (root=7). Saved into the bundle as berth-shim.json so `berth-shim delete` (no
 * RPC, no stdin) knows the runtime. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct runtime_options {
	char *binary; /* a path or a name looked up on PATH */
	char *root;   /* --root override; NULL = runtime_root(namespace) */
};

/* berth-runtime next to this binary (<dir of /proc/self/exe>/berth-runtime, then
 * <dir>/../../bin/berth-runtime for a checkout), else "berth-runtime" from PATH. */
void options_default(struct runtime_options *o);
/* From an encoded google.protobuf.Any (Create's options, or the bytes `start` reads on stdin);
 * empty input or another type gives the defaults. 0 or -EBADMSG. */
int options_from_any(const uint8_t *any, size_t len, struct runtime_options *o);
/* From Any fields already split out. */
int options_from_any_fields(const char *type_url, const uint8_t *value, size_t len, struct runtime_options *o);
int options_save(const char *bundle, const struct runtime_options *o);
/* The saved options, or the defaults when there are none. */
void options_load(const char *bundle, struct runtime_options *o);
void options_free(struct runtime_options *o);
