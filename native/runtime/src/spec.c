#include "spec.h"

#include <sched.h>
#include <sys/personality.h>
#include <sys/mount.h>
#include <sys/resource.h>

const struct ns_desc ns_desc[NS_COUNT] = {
	[NS_USER] = {"user", "user", CLONE_NEWUSER},     [NS_PID] = {"pid", "pid", CLONE_NEWPID},
	[NS_NET] = {"network", "net", CLONE_NEWNET},     [NS_IPC] = {"ipc", "ipc", CLONE_NEWIPC},
	[NS_UTS] = {"uts", "uts", CLONE_NEWUTS},         [NS_MNT] = {"mount", "mnt", CLONE_NEWNS},
	[NS_CGROUP] = {"cgroup", "cgroup", CLONE_NEWCGROUP}, [NS_TIME] = {"time", "time", CLONE_NEWTIME},
};

const char *const hook_names[HOOK_COUNT] = {"prestart", "createRuntime", "createContainer", "startContainer",
					    "poststart", "poststop"};

const char *const cap_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE"};
const size_t n_cap_names = sizeof cap_names / sizeof *cap_names;

int cap_from_name(const char *name)
{
	for (size_t i = 0; i < n_cap_names; i++)
		if (!strcasecmp(name, cap_names[i]))
			return i;
	return -1;
}

static const struct { const char *name; int res; } rlimit_names[] = {
	{"RLIMIT_CPU", RLIMIT_CPU}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_DATA", RLIMIT_DATA},
	{"RLIMIT_STACK", RLIMIT_STACK}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_RSS", RLIMIT_RSS},
	{"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
	{"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_LOCKS", RLIMIT_LOCKS}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
	{"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
	{"RLIMIT_RTTIME", RLIMIT_RTTIME}};

/* A NULL-terminated array of the strings of a JSON string array. */
static int str_array(struct spec *s, const struct jv *obj, const char *key, const char ***out, size_t *n)
{
	struct jv *a = NULL;
	int r = jtyped(obj, key, J_ARR, &a);
	if (r < 0 || !a)
		return r;
	const char **v = arena_alloc(&s->doc, (a->n + 1) * sizeof *v);
	size_t i = 0;
	JFOR(el, a) {
		if (el->type != J_STR)
			return fail(0, "`%s` must contain only strings", key);
		v[i++] = el->s;
	}
	*out = v;
	if (n)
		*n = i;
	return 0;
}

static int parse_caps(const struct jv *p, uint64_t caps[CAPSET_COUNT])
{
	static const char *const keys[CAPSET_COUNT] = {"bounding", "effective", "inheritable", "permitted", "ambient"};
	struct jv *c = NULL;
	int r = jtyped(p, "capabilities", J_OBJ, &c);
	if (r < 0)
		return r;
	for (int k = 0; k < CAPSET_COUNT; k++) {
		struct jv *a = NULL;
		if ((r = jtyped(c, keys[k], J_ARR, &a)) < 0)
			return fail_ctx(r, "process.capabilities");
		JFOR(el, a) {
			if (el->type != J_STR)
				return fail(0, "process.capabilities.%s must contain strings", keys[k]);
			int cap = cap_from_name(el->s);
			/* Like runc, a capability this build does not know is skipped, not fatal:
			 * configs written for newer kernels must still start. */
			if (cap < 0) {
				log_debug("unknown capability %s ignored", el->s);
				continue;
			}
			caps[k] |= 1ULL << cap;
		}
	}
	return 0;
}

int spec_parse_process(struct spec *s, const struct jv *p, struct process *out)
{
	int r;
	int64_t v;
	struct jv *o = NULL;
	memset(out, 0, sizeof *out);
	if ((r = jbool(p, "terminal", &out->terminal)) < 0 || (r = jstr(p, "cwd", &out->cwd)) < 0 ||
	    (r = str_array(s, p, "args", &out->args, NULL)) < 0 || (r = str_array(s, p, "env", &out->env, &out->n_env)) < 0 ||
	    (r = jbool(p, "noNewPrivileges", &out->nnp)) < 0 || (r = jstr(p, "apparmorProfile", &out->apparmor)) < 0 ||
	    (r = jstr(p, "selinuxLabel", &out->selinux)) < 0 ||
	    (r = jint(p, "oomScoreAdj", -1000, 1000, &out->oom, &out->has_oom)) < 0)
		return fail_ctx(r, "process");
	if (!out->args || !out->args[0])
		return fail(0, "process.args must not be empty");
	if (!out->cwd || out->cwd[0] != '/')
		return fail(0, "process.cwd must be an absolute path");
	if ((r = jtyped(p, "consoleSize", J_OBJ, &o)) < 0)
		return r;
	if (o) {
		if ((r = jint(o, "height", 0, UINT16_MAX, &v, NULL)) < 0)
			return fail_ctx(r, "process.consoleSize");
		out->cons_h = v;
		if ((r = jint(o, "width", 0, UINT16_MAX, &v, NULL)) < 0)
			return fail_ctx(r, "process.consoleSize");
		out->cons_w = v;
		out->has_size = true;
	}
	struct jv *u = NULL;
	if ((r = jtyped(p, "user", J_OBJ, &u)) < 0)
		return r;
	v = 0;
	if ((r = jint(u, "uid", 0, UINT32_MAX - 1, &v, NULL)) < 0)
		return fail_ctx(r, "process.user");
	out->uid = v;
	v = 0;
	if ((r = jint(u, "gid", 0, UINT32_MAX - 1, &v, NULL)) < 0)
		return fail_ctx(r, "process.user");
	out->gid = v;
	if ((r = jint(u, "umask", 0, 0777, &v, &out->has_umask)) < 0)
		return fail_ctx(r, "process.user");
	out->umask = v;
	struct jv *ag = NULL;
	if ((r = jtyped(u, "additionalGids", J_ARR, &ag)) < 0)
		return fail_ctx(r, "process.user");
	if (ag) {
		out->agids = arena_alloc(&s->doc, ag->n * sizeof *out->agids);
		JFOR(g, ag) {
			if (g->type != J_NUM || !g->is_int || g->i < 0 || g->i >= UINT32_MAX)
				return fail(0, "process.user.additionalGids must hold gids");
			out->agids[out->n_agids++] = g->i;
		}
	}
	if ((r = parse_caps(p, out->caps)) < 0)
		return r;
	struct jv *rl = NULL;
	if ((r = jtyped(p, "rlimits", J_ARR, &rl)) < 0)
		return r;
	if (rl) {
		out->rlimits = arena_alloc(&s->doc, rl->n * sizeof *out->rlimits);
		JFOR(e, rl) {
			const char *type = NULL;
			int64_t soft = 0, hard = 0;
			if ((r = jstr(e, "type", &type)) < 0 || (r = jint(e, "soft", 0, INT64_MAX, &soft, NULL)) < 0 ||
			    (r = jint(e, "hard", 0, INT64_MAX, &hard, NULL)) < 0)
				return fail_ctx(r, "process.rlimits");
			struct jv *sv = jget(e, "soft"), *hv = jget(e, "hard");
			struct rlim *x = &out->rlimits[out->n_rlimits++];
			/* uint64 max (RLIM_INFINITY) arrives as a wrapped int64. */
			x->soft = sv && sv->is_int ? (uint64_t)sv->i : (uint64_t)soft;
			x->hard = hv && hv->is_int ? (uint64_t)hv->i : (uint64_t)hard;
			x->res = -1;
			for (size_t k = 0; type && k < sizeof rlimit_names / sizeof *rlimit_names; k++)
				if (!strcmp(type, rlimit_names[k].name))
					x->res = rlimit_names[k].res;
			if (x->res < 0)
				return fail(0, "unknown rlimit type `%s`", type ? type : "");
		}
	}
	return 0;
}

static const struct { const char *name; unsigned long set, clear; } mount_flags[] = {
	{"ro", MS_RDONLY, 0}, {"rw", 0, MS_RDONLY}, {"nosuid", MS_NOSUID, 0}, {"suid", 0, MS_NOSUID},
	{"nodev", MS_NODEV, 0}, {"dev", 0, MS_NODEV}, {"noexec", MS_NOEXEC, 0}, {"exec", 0, MS_NOEXEC},
	{"sync", MS_SYNCHRONOUS, 0}, {"async", 0, MS_SYNCHRONOUS}, {"dirsync", MS_DIRSYNC, 0},
	{"remount", MS_REMOUNT, 0}, {"mand", MS_MANDLOCK, 0}, {"nomand", 0, MS_MANDLOCK},
	{"atime", 0, MS_NOATIME}, {"noatime", MS_NOATIME, 0}, {"diratime", 0, MS_NODIRATIME},
	{"nodiratime", MS_NODIRATIME, 0}, {"relatime", MS_RELATIME, 0}, {"norelatime", 0, MS_RELATIME},
	{"strictatime", MS_STRICTATIME, 0}, {"nostrictatime", 0, MS_STRICTATIME}, {"nosymfollow", MS_NOSYMFOLLOW, 0},
	{"symfollow", 0, MS_NOSYMFOLLOW}, {"silent", MS_SILENT, 0}, {"loud", 0, MS_SILENT},
};

static const struct { const char *name; unsigned long flags; } propagation_flags[] = {
	{"private", MS_PRIVATE}, {"rprivate", MS_PRIVATE | MS_REC}, {"shared", MS_SHARED},
	{"rshared", MS_SHARED | MS_REC}, {"slave", MS_SLAVE}, {"rslave", MS_SLAVE | MS_REC},
	{"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

int parse_mount_options(struct spec *s, const struct jv *opts, struct mount *m)
{
	struct buf data = {0};
	JFOR(o, opts) {
		if (o->type != J_STR)
			return fail(0, "mount options must be strings");
		bool known = false;
		if (!strcmp(o->s, "bind") || !strcmp(o->s, "rbind")) {
			m->bind = true;
			m->flags |= MS_BIND | (o->s[0] == 'r' ? MS_REC : 0);
			continue;
		}
		for (size_t k = 0; k < sizeof mount_flags / sizeof *mount_flags && !known; k++)
			if (!strcmp(o->s, mount_flags[k].name)) {
				m->flags = (m->flags & ~mount_flags[k].clear) | mount_flags[k].set;
				m->clear = (m->clear & ~mount_flags[k].set) | mount_flags[k].clear;
				known = true;
			}
		for (size_t k = 0; k < sizeof propagation_flags / sizeof *propagation_flags && !known; k++)
			if (!strcmp(o->s, propagation_flags[k].name)) {
				m->propagation = propagation_flags[k].flags;
				known = true;
			}
		if (!known)
			buf_printf(&data, "%s%s", data.len ? "," : "", o->s);
	}
	if (data.len) {
		m->data = arena_alloc(&s->doc, data.len + 1);
		memcpy(m->data, data.p, data.len + 1);
	}
	buf_free(&data);
	return 0;
}

static int parse_mounts(struct spec *s, const struct jv *root)
{
	struct jv *a = NULL;
	int r = jtyped(root, "mounts", J_ARR, &a);
	if (r < 0 || !a)
		return r;
	s->mounts = arena_alloc(&s->doc, a->n * sizeof *s->mounts);
	JFOR(e, a) {
		struct mount *m = &s->mounts[s->n_mounts++];
		struct jv *opts = NULL;
		if ((r = jstr(e, "destination", &m->dest)) < 0 || (r = jstr(e, "type", &m->type)) < 0 ||
		    (r = jstr(e, "source", &m->source)) < 0 || (r = jtyped(e, "options", J_ARR, &opts)) < 0)
			return fail_ctx(r, "mounts");
		if (!m->dest || m->dest[0] != '/')
			return fail(0, "mount destination `%s` must be an absolute path", m->dest ? m->dest : "");
		if ((r = parse_mount_options(s, opts, m)) < 0)
			return r;
		if (m->type && !strcmp(m->type, "bind")) {
			m->bind = true;
			m->flags |= MS_BIND;
		}
		if (!m->type && !m->bind)
			return fail(0, "mount `%s` has no type", m->dest);
		if (m->bind && !m->source)
			return fail(0, "bind mount `%s` has no source", m->dest);
	}
	return 0;
}

static int parse_hooks(struct spec *s, const struct jv *root)
{
	struct jv *h = NULL;
	int r = jtyped(root, "hooks", J_OBJ, &h);
	if (r < 0 || !h)
		return r;
	for (int k = 0; k < HOOK_COUNT; k++) {
		struct jv *a = NULL;
		if ((r = jtyped(h, hook_names[k], J_ARR, &a)) < 0)
			return fail_ctx(r, "hooks");
		if (!a)
			continue;
		s->hooks[k].v = arena_alloc(&s->doc, a->n * sizeof(struct hook));
		JFOR(e, a) {
			struct hook *x = &s->hooks[k].v[s->hooks[k].n++];
			if ((r = jstr(e, "path", &x->path)) < 0 || (r = str_array(s, e, "args", &x->args, NULL)) < 0 ||
			    (r = str_array(s, e, "env", &x->env, NULL)) < 0 ||
			    (r = jint(e, "timeout", 1, INT32_MAX, &x->timeout, NULL)) < 0)
				return fail_ctx(r, "hooks.%s", hook_names[k]);
			if (!x->path || x->path[0] != '/')
				return fail(0, "hooks.%s: path must be absolute", hook_names[k]);
		}
	}
	return 0;
}

static int parse_idmaps(struct spec *s, const struct jv *lx, const char *key, struct idmap **out, size_t *n)
{
	struct jv *a = NULL;
	int r = jtyped(lx, key, J_ARR, &a);
	if (r < 0 || !a)
		return r;
	*out = arena_alloc(&s->doc, a->n * sizeof **out);
	JFOR(e, a) {
		int64_t c = -1, h = -1, z = -1;
		if ((r = jint(e, "containerID", 0, UINT32_MAX - 1, &c, NULL)) < 0 ||
		    (r = jint(e, "hostID", 0, UINT32_MAX - 1, &h, NULL)) < 0 ||
		    (r = jint(e, "size", 1, UINT32_MAX, &z, NULL)) < 0)
			return fail_ctx(r, "linux.%s", key);
		if (c < 0 || h < 0 || z < 1)
			return fail(0, "linux.%s: containerID, hostID and a positive size are required", key);
		(*out)[(*n)++] = (struct idmap){c, h, z};
	}
	return 0;
}

static int parse_devices(struct spec *s, const struct jv *lx)
{
	struct jv *a = NULL;
	int r = jtyped(lx, "devices", J_ARR, &a);
	if (r < 0 || !a)
		return r;
	s->devices = arena_alloc(&s->doc, a->n * sizeof *s->devices);
	JFOR(e, a) {
		struct device *d = &s->devices[s->n_devices++];
		const char *type = NULL;
		int64_t v;
		if ((r = jstr(e, "path", &d->path)) < 0 || (r = jstr(e, "type", &type)) < 0 ||
		    (r = jint(e, "major", 0, 0xfffff, &d->major, NULL)) < 0 ||
		    (r = jint(e, "minor", 0, 0xfffff, &d->minor, NULL)) < 0)
			return fail_ctx(r, "linux.devices");
		if (!d->path || d->path[0] != '/' || !type || strlen(type) != 1 || !strchr("cbup", type[0]))
			return fail(0, "linux.devices: an absolute path and a type c, b, u or p are required");
		d->type = type[0];
		if ((r = jint(e, "fileMode", 0, 07777, &v, &d->has_mode)) < 0)
			return fail_ctx(r, "linux.devices");
		d->mode = v;
		if ((r = jint(e, "uid", 0, UINT32_MAX - 1, &v, &d->has_uid)) < 0)
			return fail_ctx(r, "linux.devices");
		d->uid = v;
		if ((r = jint(e, "gid", 0, UINT32_MAX - 1, &v, &d->has_gid)) < 0)
			return fail_ctx(r, "linux.devices");
		d->gid = v;
	}
	return 0;
}

static int parse_linux(struct spec *s, const struct jv *lx)
{
	int r;
	struct jv *nss = NULL;
	if ((r = jtyped(lx, "namespaces", J_ARR, &nss)) < 0)
		return r;
	JFOR(e, nss) {
		const char *type = NULL, *path = NULL;
		if ((r = jstr(e, "type", &type)) < 0 || (r = jstr(e, "path", &path)) < 0)
			return fail_ctx(r, "linux.namespaces");
		int k = 0;
		while (k < NS_COUNT && (!type || strcmp(type, ns_desc[k].spec)))
			k++;
		if (k == NS_COUNT)
			return fail(0, "unknown namespace type `%s`", type ? type : "");
		if (s->ns_on[k])
			return fail(0, "namespace `%s` listed twice", type);
		s->ns_on[k] = true;
		s->ns_path[k] = path && *path ? path : NULL;
	}
	if ((r = parse_idmaps(s, lx, "uidMappings", &s->uidm, &s->n_uidm)) < 0 ||
	    (r = parse_idmaps(s, lx, "gidMappings", &s->gidm, &s->n_gidm)) < 0)
		return r;
	if ((s->n_uidm || s->n_gidm) && (!s->ns_on[NS_USER] || s->ns_path[NS_USER]))
		return fail(0, "uid/gid mappings require a new user namespace");
	if (s->ns_on[NS_USER] && !s->ns_path[NS_USER] && (!s->n_uidm || !s->n_gidm))
		return fail(0, "a new user namespace needs uidMappings and gidMappings");
	if ((r = jstr(lx, "cgroupsPath", &s->cgroups_path)) < 0 || (r = jstr(lx, "rootfsPropagation", &s->rootfs_prop)) < 0 ||
	    (r = jstr(lx, "mountLabel", &s->mount_label)) < 0 ||
	    (r = str_array(s, lx, "maskedPaths", &s->masked, NULL)) < 0 ||
	    (r = str_array(s, lx, "readonlyPaths", &s->readonly, NULL)) < 0 ||
	    (r = jtyped(lx, "resources", J_OBJ, &s->resources)) < 0 || (r = jtyped(lx, "sysctl", J_OBJ, &s->sysctl)) < 0 ||
	    (r = jtyped(lx, "seccomp", J_OBJ, &s->seccomp)) < 0)
		return fail_ctx(r, "linux");
	struct jv *pers = NULL;
	const char *domain = NULL;
	s->personality = -1;
	if ((r = jtyped(lx, "personality", J_OBJ, &pers)) < 0 || (r = jstr(pers, "domain", &domain)) < 0)
		return fail_ctx(r, "linux.personality");
	if (domain && strcmp(domain, "LINUX") && strcmp(domain, "LINUX32"))
		return fail(0, "linux.personality.domain `%s`: only LINUX and LINUX32", domain);
	if (domain)
		s->personality = strcmp(domain, "LINUX32") ? PER_LINUX : PER_LINUX32;
	JFOR(kv, s->sysctl)
		if (kv->type != J_STR || strstr(kv->key, "..") || strchr(kv->key, '/') == kv->key)
			return fail(0, "linux.sysctl `%s`: invalid", kv->key);
	return parse_devices(s, lx);
}

int spec_load(struct spec *s, const char *text, size_t len)
{
	int r = json_parse(&s->doc, text, len);
	if (r < 0)
		return fail_ctx(r, "config.json");
	const struct jv *root = s->doc.root, *rt = NULL, *lx = NULL, *p = NULL;
	if (root->type != J_OBJ)
		return fail(0, "config.json: not an object");
	if ((r = jstr(root, "ociVersion", &s->version)) < 0 || (r = jtyped(root, "root", J_OBJ, (struct jv **)&rt)) < 0 ||
	    (r = jtyped(root, "linux", J_OBJ, (struct jv **)&lx)) < 0 ||
	    (r = jtyped(root, "process", J_OBJ, (struct jv **)&p)) < 0 ||
	    (r = jtyped(root, "annotations", J_OBJ, &s->annotations)) < 0)
		return fail_ctx(r, "config.json");
	if (!s->version)
		return fail(0, "config.json: ociVersion is required");
	if (!rt || (r = jstr(rt, "path", &s->root)) < 0 || !s->root || (r = jbool(rt, "readonly", &s->root_ro)) < 0)
		return r < 0 ? fail_ctx(r, "root") : fail(0, "config.json: root.path is required");
	if (!p)
		return fail(0, "config.json: process is required");
	if (!lx)
		return fail(0, "config.json: linux is required");
	s->has_hostname = jget(root, "hostname");
	s->has_domainname = jget(root, "domainname");
	if ((r = jstr(root, "hostname", &s->hostname)) < 0 || (r = jstr(root, "domainname", &s->domainname)) < 0 ||
	    (r = spec_parse_process(s, p, &s->proc)) < 0 || (r = parse_mounts(s, root)) < 0 ||
	    (r = parse_hooks(s, root)) < 0 || (r = parse_linux(s, lx)) < 0)
		return r;
	if (!s->ns_on[NS_MNT] || s->ns_path[NS_MNT])
		return fail(0, "a new mount namespace is required");
	if ((s->has_hostname || s->has_domainname) && (!s->ns_on[NS_UTS]))
		return fail(0, "hostname and domainname need a new uts namespace");
	return 0;
}

void spec_free(struct spec *s) { json_free(&s->doc); }
