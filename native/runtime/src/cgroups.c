#include "cgroups.h"

#include "devices.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#define CG_ROOT "/sys/fs/cgroup"

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == magic;
}

int cg_layout(void)
{
	static int layout = -1;
	if (layout < 0)
		layout = is_fs(CG_ROOT, CGROUP2_SUPER_MAGIC)		     ? CG_V2
			 : is_fs(CG_ROOT "/unified", CGROUP2_SUPER_MAGIC) ? CG_HYBRID
									  : CG_V1;
	return layout;
}

char *cg_path(const char *cgroups_path, const char *id)
{
	if (!cgroups_path || !*cgroups_path)
		return xasprintf("/%s", id);
	return xasprintf("%s%s", cgroups_path[0] == '/' ? "" : "/", cgroups_path);
}

/* The hierarchies to use, as mount points under /sys/fs/cgroup: the v1 controller mounts (aliases
 * such as cpu -> cpu,cpuacct are symlinks and skipped) and the cgroup2 mount if any. Looked up
 * once per process. */
struct hier { char dir[64]; bool v2; };
static struct hier hier_cache[16];
static int hier_count = -1;

static int hierarchies(struct hier **out)
{
	*out = hier_cache;
	if (hier_count >= 0)
		return hier_count;
	struct hier *h = hier_cache;
	if (cg_layout() == CG_V2) {
		strcpy(h[0].dir, CG_ROOT);
		h[0].v2 = true;
		return hier_count = 1;
	}
	DIR *d cleanup_dir = opendir(CG_ROOT);
	if (!d)
		return fail(errno, "open " CG_ROOT);
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) && n < 16;) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.' || strlen(e->d_name) > 40)
			continue;
		snprintf(h[n].dir, sizeof h[n].dir, CG_ROOT "/%s", e->d_name);
		struct statfs sf;
		if (statfs(h[n].dir, &sf) < 0 || (sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC))
			continue;
		h[n].v2 = sf.f_type == CGROUP2_SUPER_MAGIC;
		n++;
	}
	return hier_count = n;
}

static int open_dir(const char *base, const char *path)
{
	cleanup_free char *p = xasprintf("%s%s", base, path);
	int fd = open(p, O_DIRECTORY | O_PATH | O_CLOEXEC);
	return fd < 0 ? fail(errno, "open cgroup `%s`", p) : fd;
}

static int wr(int dfd, const char *file, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int wr(int dfd, const char *file, const char *fmt, ...)
{
	char v[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof v, fmt, ap);
	va_end(ap);
	cleanup_close int fd = openat(dfd, file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, "cgroup: open %s", file);
	if (write(fd, v, strlen(v)) < 0)
		return fail(errno, "cgroup: write `%s` to %s", v, file);
	return 0;
}

/* A new cpuset cgroup starts with no cpus or mems, and attaching to it fails: copy the parent's. */
static int cpuset_init(const char *dir)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	cleanup_free char *parent = xstrdup(dir);
	*strrchr(parent, '/') = 0;
	for (int i = 0; i < 2; i++) {
		cleanup_free char *pv = NULL, *path = xasprintf("%s/%s", dir, files[i]), *pp = xasprintf("%s/%s", parent, files[i]);
		cleanup_free char *cur = NULL;
		int r = read_file_at(AT_FDCWD, path, &cur, NULL);
		if (r < 0)
			return r;
		if (cur[0] != '\n' && cur[0])
			continue;
		if ((r = read_file_at(AT_FDCWD, pp, &pv, NULL)) < 0 || (r = write_file_at(AT_FDCWD, path, pv, strlen(pv))) < 0)
			return r;
	}
	return 0;
}

static int mkdir_cg(const struct hier *h, const char *path)
{
	cleanup_free char *full = xasprintf("%s%s", h->dir, path);
	bool cpuset = !h->v2 && !strcmp(h->dir, CG_ROOT "/cpuset");
	for (char *s = full + strlen(h->dir) + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = 0;
		if (mkdir(full, 0755) == 0) {
			int r = cpuset ? cpuset_init(full) : 0;
			if (r < 0)
				return r;
		} else if (errno != EEXIST) {
			return fail(errno, "cgroup: mkdir `%s`", full);
		}
		if (!c)
			return 0;
		*s = c;
	}
}

/* For cgroup2, a controller's files appear only when every ancestor delegates it. */
static int v2_enable(const char *base, const char *path)
{
	cleanup_free char *p = xasprintf("%s%s", base, path);
	size_t blen = strlen(base);
	for (char *s = p + blen;; s++) {
		if (*s != '/' && *s)
			continue;
		if (s == p + strlen(p))
			return 0;
		char c = *s;
		*s = 0;
		cleanup_free char *ctl = NULL, *dir = xstrdup(s == p + blen ? base : p);
		cleanup_free char *cf = xasprintf("%s/cgroup.controllers", dir), *sc = xasprintf("%s/cgroup.subtree_control", dir);
		int r = read_file_at(AT_FDCWD, cf, &ctl, NULL);
		if (r < 0)
			return r;
		cleanup_buf struct buf b = {0};
		for (char *t = strtok(ctl, " \n"); t; t = strtok(NULL, " \n"))
			buf_printf(&b, "%s+%s", b.len ? " " : "", t);
		if (b.len && (r = write_file_at(AT_FDCWD, sc, b.p, b.len)) < 0)
			return r;
		*s = c;
	}
}

static int wr_i(int dfd, const struct jv *o, const char *key, const char *file)
{
	struct jv *v = NULL;
	int r = jtyped(o, key, J_NUM, &v);
	if (r < 0 || !v)
		return r;
	if (!v->is_int)
		return fail(0, "linux.resources: `%s` must be an integer", key);
	return wr(dfd, file, "%lld", (long long)v->i);
}

static int devnum(const struct jv *e, char *out, size_t len)
{
	int64_t maj = 0, min = 0;
	int r;
	if ((r = jint(e, "major", 0, 0xfffff, &maj, NULL)) < 0 || (r = jint(e, "minor", 0, 0xfffff, &min, NULL)) < 0)
		return r;
	snprintf(out, len, "%lld:%lld", (long long)maj, (long long)min);
	return 0;
}

/* blkio/io per-device lists: "major:minor value" lines. */
static int wr_devlist(int dfd, const struct jv *o, const char *key, const char *vkey, const char *file, const char *fmt)
{
	struct jv *a = NULL;
	int r = jtyped(o, key, J_ARR, &a);
	if (r < 0)
		return r;
	JFOR(e, a) {
		char dn[32];
		int64_t v = 0;
		bool has = false;
		if ((r = devnum(e, dn, sizeof dn)) < 0 || (r = jint(e, vkey, 0, INT64_MAX, &v, &has)) < 0)
			return fail_ctx(r, "linux.resources.blockIO.%s", key);
		if (has && (r = wr(dfd, file, fmt, dn, (long long)v)) < 0)
			return r;
	}
	return 0;
}

static bool has_file(int dfd, const char *f) { return faccessat(dfd, f, F_OK, 0) == 0; }

static int v1_memory(int dfd, const struct jv *m)
{
	int r;
	struct jv *lim = jget(m, "limit"), *swap = jget(m, "swap");
	if (swap && !has_file(dfd, "memory.memsw.limit_in_bytes"))
		return fail(0, "linux.resources.memory.swap: swap accounting is not enabled on this host");
	/* memsw must stay >= limit at every step, so the order depends on the direction. */
	if (swap && (r = wr_i(dfd, m, "swap", "memory.memsw.limit_in_bytes")) < 0) {
		if ((r = wr_i(dfd, m, "limit", "memory.limit_in_bytes")) < 0 ||
		    (r = wr_i(dfd, m, "swap", "memory.memsw.limit_in_bytes")) < 0)
			return r;
	} else if (lim && (r = wr_i(dfd, m, "limit", "memory.limit_in_bytes")) < 0) {
		return r;
	}
	bool oom = false;
	if ((r = wr_i(dfd, m, "reservation", "memory.soft_limit_in_bytes")) < 0 ||
	    (r = wr_i(dfd, m, "swappiness", "memory.swappiness")) < 0 || (r = jbool(m, "disableOOMKiller", &oom)) < 0)
		return r;
	return oom ? wr(dfd, "memory.oom_control", "1") : 0;
}

/* One rule per write(2), as the devices controller parses them, through one open fd per file: a
 * default spec has some twenty rules. */
static int v1_devices(int dfd, const struct spec *s)
{
	cleanup_free struct devrule *rules = NULL;
	size_t n;
	int r = device_rules(s, &rules, &n);
	cleanup_close int allow = -1, deny = -1;
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct devrule *d = &rules[i];
		const char *file = d->allow ? "devices.allow" : "devices.deny";
		int *fd = d->allow ? &allow : &deny;
		if (*fd < 0 && (*fd = openat(dfd, file, O_WRONLY | O_CLOEXEC)) < 0)
			return fail(errno, "cgroup: open %s", file);
		char rule[80] = "a";
		if (d->type != 'a') {
			char ma[24] = "*", mi[24] = "*";
			if (d->major >= 0)
				snprintf(ma, sizeof ma, "%lld", (long long)d->major);
			if (d->minor >= 0)
				snprintf(mi, sizeof mi, "%lld", (long long)d->minor);
			snprintf(rule, sizeof rule, "%c %s:%s %s%s%s", d->type, ma, mi, d->access & DEV_R ? "r" : "",
				 d->access & DEV_W ? "w" : "", d->access & DEV_M ? "m" : "");
		}
		if (write(*fd, rule, strlen(rule)) < 0)
			r = fail(errno, "cgroup: write `%s` to %s", rule, file);
	}
	return r;
}

/* cgroup2 has no devices files: the rules become an eBPF program on the cgroup. */
static int v2_devices(const char *dir, const struct spec *s)
{
	cleanup_free struct devrule *rules = NULL;
	size_t n;
	int r = device_rules(s, &rules, &n);
	if (r < 0 || !rules)
		return r;
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, "open cgroup `%s`", dir);
	return devices_bpf_attach(fd, rules, n);
}

static int apply_v1(const char *ctrl, int dfd, const struct spec *s)
{
	const struct jv *res = s->resources;
	struct jv *o = NULL;
	int r = 0;
	if (!strcmp(ctrl, "memory") && (o = jget(res, "memory")))
		return v1_memory(dfd, o);
	if (!strcmp(ctrl, "cpu") && (o = jget(res, "cpu"))) {
		if ((r = wr_i(dfd, o, "shares", "cpu.shares")) < 0 || (r = wr_i(dfd, o, "period", "cpu.cfs_period_us")) < 0 ||
		    (r = wr_i(dfd, o, "quota", "cpu.cfs_quota_us")) < 0 ||
		    (r = wr_i(dfd, o, "realtimePeriod", "cpu.rt_period_us")) < 0 ||
		    (r = wr_i(dfd, o, "realtimeRuntime", "cpu.rt_runtime_us")) < 0 || (r = wr_i(dfd, o, "idle", "cpu.idle")) < 0)
			return fail_ctx(r, "linux.resources.cpu");
		return 0;
	}
	if (!strcmp(ctrl, "cpuset") && (o = jget(res, "cpu"))) {
		const char *cpus = NULL, *mems = NULL;
		if ((r = jstr(o, "cpus", &cpus)) < 0 || (r = jstr(o, "mems", &mems)) < 0 ||
		    (cpus && (r = wr(dfd, "cpuset.cpus", "%s", cpus)) < 0) || (mems && (r = wr(dfd, "cpuset.mems", "%s", mems)) < 0))
			return fail_ctx(r, "linux.resources.cpu");
		return 0;
	}
	if (!strcmp(ctrl, "pids") && (o = jget(res, "pids"))) {
		int64_t lim = 0;
		bool has = false;
		if ((r = jint(o, "limit", INT64_MIN, INT64_MAX, &lim, &has)) < 0)
			return fail_ctx(r, "linux.resources.pids");
		return !has ? 0 : lim > 0 ? wr(dfd, "pids.max", "%lld", (long long)lim) : wr(dfd, "pids.max", "max");
	}
	if (!strcmp(ctrl, "blkio") && (o = jget(res, "blockIO"))) {
		bool bfq = !has_file(dfd, "blkio.weight");
		const char *w = bfq ? "blkio.bfq.weight" : "blkio.weight", *wd = bfq ? "blkio.bfq.weight_device" : "blkio.weight_device";
		if ((r = wr_i(dfd, o, "weight", w)) < 0 || (r = wr_i(dfd, o, "leafWeight", "blkio.leaf_weight")) < 0 ||
		    (r = wr_devlist(dfd, o, "weightDevice", "weight", wd, "%s %lld")) < 0 ||
		    (r = wr_devlist(dfd, o, "throttleReadBpsDevice", "rate", "blkio.throttle.read_bps_device", "%s %lld")) < 0 ||
		    (r = wr_devlist(dfd, o, "throttleWriteBpsDevice", "rate", "blkio.throttle.write_bps_device", "%s %lld")) < 0 ||
		    (r = wr_devlist(dfd, o, "throttleReadIOPSDevice", "rate", "blkio.throttle.read_iops_device", "%s %lld")) < 0 ||
		    (r = wr_devlist(dfd, o, "throttleWriteIOPSDevice", "rate", "blkio.throttle.write_iops_device", "%s %lld")) < 0)
			return fail_ctx(r, "linux.resources.blockIO");
		return 0;
	}
	if (!strcmp(ctrl, "devices"))
		return v1_devices(dfd, s);
	if (!strcmp(ctrl, "net_cls") && (o = jget(res, "network")))
		return wr_i(dfd, o, "classID", "net_cls.classid");
	return 0;
}

static int apply_hugetlb(int dfd, const struct jv *res, bool v2)
{
	struct jv *a = NULL;
	int r = jtyped(res, "hugepageLimits", J_ARR, &a);
	if (r < 0)
		return r;
	JFOR(e, a) {
		const char *ps = NULL;
		int64_t lim = 0;
		if ((r = jstr(e, "pageSize", &ps)) < 0 || (r = jint(e, "limit", 0, INT64_MAX, &lim, NULL)) < 0 || !ps ||
		    strchr(ps, '/'))
			return r < 0 ? fail_ctx(r, "linux.resources.hugepageLimits") : fail(0, "hugepageLimits: bad pageSize");
		char f[64];
		snprintf(f, sizeof f, "hugetlb.%s.%s", ps, v2 ? "max" : "limit_in_bytes");
		if ((r = wr(dfd, f, "%lld", (long long)lim)) < 0)
			return r;
	}
	return 0;
}

static int apply_unified(int dfd, const struct jv *res)
{
	struct jv *u = NULL;
	int r = jtyped(res, "unified", J_OBJ, &u);
	if (r < 0)
		return r;
	JFOR(kv, u) {
		if (kv->type != J_STR || strchr(kv->key, '/') || kv->key[0] == '.')
			return fail(0, "linux.resources.unified: invalid entry `%s`", kv->key);
		if ((r = wr(dfd, kv->key, "%s", kv->s)) < 0)
			return r;
	}
	return 0;
}

static int apply_v2(int dfd, const struct jv *res)
{
	struct jv *o;
	int r;
	if ((o = jget(res, "memory"))) {
		int64_t lim = 0, swap = 0;
		bool hl = false, hs = false;
		if ((r = jint(o, "limit", -1, INT64_MAX, &lim, &hl)) < 0 || (r = jint(o, "swap", -1, INT64_MAX, &swap, &hs)) < 0)
			return fail_ctx(r, "linux.resources.memory");
		if (hl && (r = lim < 0 ? wr(dfd, "memory.max", "max") : wr(dfd, "memory.max", "%lld", (long long)lim)) < 0)
			return r;
		/* OCI swap is memory+swap; cgroup2 counts swap alone. */
		if (hs && (r = swap < 0 ? wr(dfd, "memory.swap.max", "max")
					: wr(dfd, "memory.swap.max", "%lld", (long long)(swap - (hl && lim > 0 ? lim : 0)))) < 0)
			return r;
		if ((r = wr_i(dfd, o, "reservation", "memory.low")) < 0)
			return r;
	}
	if ((o = jget(res, "cpu"))) {
		int64_t shares = 0, quota = -1, period = 100000;
		bool hs = false, hq = false, hp = false;
		const char *cpus = NULL, *mems = NULL;
		if ((r = jint(o, "shares", 0, UINT32_MAX, &shares, &hs)) < 0 || (r = jint(o, "quota", -1, INT64_MAX, &quota, &hq)) < 0 ||
		    (r = jint(o, "period", 1, UINT32_MAX, &period, &hp)) < 0 || (r = jstr(o, "cpus", &cpus)) < 0 ||
		    (r = jstr(o, "mems", &mems)) < 0)
			return fail_ctx(r, "linux.resources.cpu");
		if (hs && shares && (r = wr(dfd, "cpu.weight", "%lld", (long long)(1 + ((shares - 2) * 9999) / 262142))) < 0)
			return r;
		if ((hq || hp) && (r = quota > 0 ? wr(dfd, "cpu.max", "%lld %lld", (long long)quota, (long long)period)
					      : wr(dfd, "cpu.max", "max %lld", (long long)period)) < 0)
			return r;
		if ((cpus && (r = wr(dfd, "cpuset.cpus", "%s", cpus)) < 0) || (mems && (r = wr(dfd, "cpuset.mems", "%s", mems)) < 0))
			return r;
	}
	if ((o = jget(res, "pids"))) {
		int64_t lim = 0;
		bool has = false;
		if ((r = jint(o, "limit", INT64_MIN, INT64_MAX, &lim, &has)) < 0)
			return r;
		if (has && (r = lim > 0 ? wr(dfd, "pids.max", "%lld", (long long)lim) : wr(dfd, "pids.max", "max")) < 0)
			return r;
	}
	if ((o = jget(res, "blockIO"))) {
		if ((r = wr_i(dfd, o, "weight", "io.weight")) < 0 ||
		    (r = wr_devlist(dfd, o, "throttleReadBpsDevice", "rate", "io.max", "%s rbps=%lld")) < 0 ||
		    (r = wr_devlist(dfd, o, "throttleWriteBpsDevice", "rate", "io.max", "%s wbps=%lld")) < 0 ||
		    (r = wr_devlist(dfd, o, "throttleReadIOPSDevice", "rate", "io.max", "%s riops=%lld")) < 0 ||
		    (r = wr_devlist(dfd, o, "throttleWriteIOPSDevice", "rate", "io.max", "%s wiops=%lld")) < 0)
			return r;
	}
	return 0;
}

int cg_create(const char *path, const struct spec *s)
{
	struct hier *h;
	int n = hierarchies(&h), r;
	if (n < 0)
		return n;
	const struct jv *res = s->resources;
	/* On the hybrid layout hugetlb may exist only in cgroup2, as on this project's CI hosts. */
	bool v2_hugetlb = true;
	for (int i = 0; i < n; i++)
		if (!h[i].v2 && !strcmp(h[i].dir, CG_ROOT "/hugetlb"))
			v2_hugetlb = false;
	bool need_v2 = jget(res, "unified") || (v2_hugetlb && jget(res, "hugepageLimits"));
	for (int i = 0; i < n; i++) {
		if ((r = mkdir_cg(&h[i], path)) < 0)
			return r;
		if (!res)
			continue;
		cleanup_close int dfd = open_dir(h[i].dir, path);
		if (dfd < 0)
			return dfd;
		if (h[i].v2) {
			bool pure = cg_layout() == CG_V2;
			if ((pure || need_v2) && (r = v2_enable(h[i].dir, path)) < 0)
				return r;
			cleanup_free char *dir = xasprintf("%s%s", h[i].dir, path);
			if ((pure && (r = apply_v2(dfd, res)) < 0) || (pure && (r = v2_devices(dir, s)) < 0) ||
			    (v2_hugetlb && (r = apply_hugetlb(dfd, res, true)) < 0) || (r = apply_unified(dfd, res)) < 0)
				return r;
		} else {
			const char *ctrl = strrchr(h[i].dir, '/') + 1;
			if ((r = (!strcmp(ctrl, "hugetlb") ? apply_hugetlb(dfd, res, false) : apply_v1(ctrl, dfd, s))) < 0)
				return r;
		}
	}
	if (cg_layout() == CG_V1 && jget(res, "unified"))
		return fail(0, "linux.resources.unified needs cgroup2");
	return 0;
}

int cg_open_unified(const char *path)
{
	int l = cg_layout();
	if (l == CG_V1)
		return -1;
	cleanup_free char *p = xasprintf("%s%s", l == CG_V2 ? CG_ROOT : CG_ROOT "/unified", path);
	return open(p, O_DIRECTORY | O_PATH | O_CLOEXEC);
}

int cg_attach_unified(const char *path, pid_t pid)
{
	struct hier *h;
	int n = hierarchies(&h), r;
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (!h[i].v2)
			continue;
		cleanup_close int dfd = open_dir(h[i].dir, path);
		if (dfd < 0 || (r = wr(dfd, "cgroup.procs", "%d", pid)) < 0)
			return fail_ctx(dfd < 0 ? dfd : r, "join cgroup %s", h[i].dir);
	}
	return 0;
}

void cg_tasks_close(struct cg_tasks *t)
{
	for (int i = 0; i < t->n; i++)
		close(t->fd[i]);
	t->n = 0;
}

int cg_tasks_open(const char *path, struct cg_tasks *t)
{
	struct hier *h;
	int n = hierarchies(&h);
	t->n = 0;
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (h[i].v2)
			continue;
		cleanup_free char *p = xasprintf("%s%s/tasks", h[i].dir, path);
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			cg_tasks_close(t);
			return fail(e, "open cgroup `%s`", p);
		}
		t->fd[t->n++] = fd;
	}
	return 0;
}

/* Writing a pid to cgroup.procs takes the kernel's global threadgroup lock for writing, which
 * waits for an RCU grace period: 10-20 ms on this kind of VM, once per create. A thread that
 * moves only itself ("0" to `tasks`) needs no such lock. Just cloned, the init is one thread, so
 * that moves the whole process. The fds were opened by the (root) parent, whose credentials the
 * kernel checks, so this works from inside a new user namespace too. */
int cg_join_self(struct cg_tasks *t)
{
	for (int i = 0; i < t->n; i++) {
		if (write(t->fd[i], "0", 1) < 0) {
			int e = errno;
			cg_tasks_close(t);
			return fail(e, "join the container's cgroups");
		}
	}
	cg_tasks_close(t);
	return 0;
}

int cg_destroy(const char *path)
{
	struct hier *h;
	int n = hierarchies(&h), ret = 0;
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		cleanup_free char *p = xasprintf("%s%s", h[i].dir, path);
		/* A killed task leaves its cgroup a moment after its parent reaped it. */
		for (int k = 0; rmdir(p) < 0 && errno != ENOENT; k++) {
			if (errno != EBUSY || k == 200) {
				ret = fail(errno, "remove cgroup `%s`", p);
				break;
			}
			usleep(5000);
		}
	}
	return ret;
}

static const char *pids_hier(void)
{
	int l = cg_layout();
	return l == CG_V2 ? CG_ROOT : l == CG_HYBRID && is_fs(CG_ROOT "/unified", CGROUP2_SUPER_MAGIC) ? CG_ROOT "/unified"
											       : CG_ROOT "/pids";
}

int cg_pids(const char *path, pid_t **out, size_t *n)
{
	cleanup_free char *p = xasprintf("%s%s/cgroup.procs", pids_hier(), path), *data = NULL;
	int r = read_file_at(AT_FDCWD, p, &data, NULL);
	if (r < 0)
		return r;
	size_t cap = 16;
	*out = malloc(cap * sizeof **out);
	*n = 0;
	for (char *t = strtok(data, "\n"); t; t = strtok(NULL, "\n")) {
		if (*n == cap)
			*out = realloc(*out, (cap *= 2) * sizeof **out);
		if (!*out)
			abort();
		(*out)[(*n)++] = atoi(t);
	}
	return 0;
}

int cg_freeze(const char *path, bool freeze)
{
	if (cg_layout() == CG_V2) {
		cleanup_free char *p = xasprintf(CG_ROOT "%s/cgroup.freeze", path);
		return write_file_at(AT_FDCWD, p, freeze ? "1" : "0", 1);
	}
	cleanup_free char *p = xasprintf(CG_ROOT "/freezer%s/freezer.state", path);
	const char *want = freeze ? "FROZEN" : "THAWED";
	for (int i = 0; i < 1000; i++) {
		int r = write_file_at(AT_FDCWD, p, want, strlen(want));
		if (r < 0)
			return r;
		if (cg_frozen(path) == freeze)
			return 0;
		usleep(1000);
	}
	return fail(EBUSY, "freezer did not reach %s", want);
}

bool cg_frozen(const char *path)
{
	bool v2 = cg_layout() == CG_V2;
	cleanup_free char *p = v2 ? xasprintf(CG_ROOT "%s/cgroup.events", path) : xasprintf(CG_ROOT "/freezer%s/freezer.state", path);
	cleanup_free char *data = NULL;
	if (read_file_at(AT_FDCWD, p, &data, NULL) < 0)
		return false;
	return v2 ? strstr(data, "frozen 1") != NULL : strncmp(data, "FROZEN", 6) == 0;
}
