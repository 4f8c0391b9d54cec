/* The OCI runtime-spec config, validated and converted once, before anything is created, so a bad
 * config fails without side effects. Strings point into the JSON arena. */
#pragma once
#include "json.h"

enum { NS_USER, NS_PID, NS_NET, NS_IPC, NS_UTS, NS_MNT, NS_CGROUP, NS_TIME, NS_COUNT };
extern const struct ns_desc { const char *spec, *proc; int flag; } ns_desc[NS_COUNT];

enum { HOOK_PRESTART, HOOK_CREATE_RUNTIME, HOOK_CREATE_CONTAINER, HOOK_START_CONTAINER, HOOK_POSTSTART,
       HOOK_POSTSTOP, HOOK_COUNT };
extern const char *const hook_names[HOOK_COUNT];

enum { CAP_BOUNDING, CAP_EFFECTIVE, CAP_INHERITABLE, CAP_PERMITTED, CAP_AMBIENT, CAPSET_COUNT };

struct idmap { uint32_t cid, hid, size; };
struct hook { const char *path, **args, **env; int64_t timeout; };
struct rlim { int res; uint64_t soft, hard; };
struct device { const char *path; char type; int64_t major, minor; uint32_t mode, uid, gid; bool has_mode, has_uid, has_gid; };

struct mount {
	const char *dest, *type, *source;
	unsigned long flags, clear, propagation; /* clear: flags explicitly turned off (rw, suid...) */
	bool bind;
	char *data;
};

struct process {
	bool terminal, has_size, has_umask, nnp, has_oom;
	uint32_t cons_h, cons_w, uid, gid, umask;
	int64_t oom;
	uint32_t *agids;
	size_t n_agids, n_rlimits, n_env;
	const char **args, **env, *cwd, *apparmor, *selinux;
	uint64_t caps[CAPSET_COUNT];
	struct rlim *rlimits;
};

struct spec {
	struct jdoc doc;
	const char *version, *root, *hostname, *domainname;
	bool root_ro, has_hostname, has_domainname;
	struct process proc;
	struct mount *mounts;
	size_t n_mounts;
	struct { struct hook *v; size_t n; } hooks[HOOK_COUNT];
	struct jv *annotations;
	/* linux */
	bool ns_on[NS_COUNT];
	const char *ns_path[NS_COUNT];
	struct idmap *uidm, *gidm;
	size_t n_uidm, n_gidm, n_devices;
	const char *cgroups_path, *rootfs_prop, **masked, **readonly, *mount_label;
	struct device *devices;
	struct jv *resources, *sysctl, *seccomp;
	int personality; /* -1: leave as is */
};

int spec_load(struct spec *s, const char *text, size_t len);
int spec_parse_process(struct spec *s, const struct jv *p, struct process *out);
void spec_free(struct spec *s);
#define cleanup_spec __attribute__((cleanup(spec_free)))

int cap_from_name(const char *name);
extern const char *const cap_names[];
extern const size_t n_cap_names;
int parse_mount_options(struct spec *s, const struct jv *opts, struct mount *m);
