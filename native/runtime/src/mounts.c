#include "mounts.h"

#include "cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#define FDPATH(buf, fd) (snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd), buf)

static int openat2_in(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
	return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Opens `path` inside the root `rootfd`. With mkmode, missing components are created as
 * directories, and the last one as a directory (S_IFDIR) or an empty file (S_IFREG). Each step
 * resolves from the root again, and a dangling symlink on the way is followed inside the root
 * (its target is created there), so nothing planted in the rootfs can reach the host. */
int open_in_root(int rootfd, const char *path, int flags, int mkmode, int *out)
{
	const uint64_t res = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	int fd = openat2_in(rootfd, path, flags, res);
	if (fd >= 0 || errno != ENOENT || !mkmode) {
		if (fd < 0)
			return fail(errno, "open `%s` in the rootfs", path);
		*out = fd;
		return 0;
	}
	cleanup_free char *p = xstrdup(path);
	for (int hops = 0;; hops++) {
		if (hops > 40)
			return fail(ELOOP, "create `%s` in the rootfs", path);
		size_t len = strlen(p);
		while (len > 1 && p[len - 1] == '/')
			p[--len] = 0;
		char *s = p + 1;
		bool restart = false;
		for (;; s++) {
			if (*s != '/' && *s)
				continue;
			bool last = !*s;
			char c = *s;
			*s = 0;
			cleanup_close int t = openat2_in(rootfd, p, O_PATH, res);
			if (t < 0 && errno != ENOENT)
				return fail(errno, "open `%s` in the rootfs", p);
			if (t < 0) {
				char *slash = strrchr(p, '/'), *name = slash + 1;
				*slash = 0;
				cleanup_close int parent = openat2_in(rootfd, *p ? p : "/", O_PATH | O_DIRECTORY, res);
				if (parent < 0)
					return fail(errno, "open parent of `%s/%s` in the rootfs", p, name);
				char target[PATH_MAX];
				ssize_t n = readlinkat(parent, name, target, sizeof target - 1);
				if (n >= 0) {
					target[n] = 0;
					*s = c;
					char *np = xasprintf("%s%s%s%s", target[0] == '/' ? "" : p, target[0] == '/' ? "" : "/", target,
							     last ? "" : s);
					free(p);
					p = np;
					restart = true;
					break;
				}
				int r = last && mkmode == S_IFREG ? mknodat(parent, name, S_IFREG | 0644, 0) : mkdirat(parent, name, 0755);
				if (r < 0 && errno != EEXIST)
					return fail(errno, "create `%s/%s` in the rootfs", p, name);
				*slash = '/';
			}
			if (last)
				break;
			*s = c;
		}
		if (!restart)
			break;
	}
	if ((fd = openat2_in(rootfd, p, flags, res)) < 0)
		return fail(errno, "open `%s` in the rootfs", path);
	*out = fd;
	return 0;
}

static const struct { unsigned long ms; uint64_t attr; } attr_map[] = {
	{MS_RDONLY, MOUNT_ATTR_RDONLY}, {MS_NOSUID, MOUNT_ATTR_NOSUID}, {MS_NODEV, MOUNT_ATTR_NODEV},
	{MS_NOEXEC, MOUNT_ATTR_NOEXEC}, {MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW}, {MS_NODIRATIME, MOUNT_ATTR_NODIRATIME},
};

/* mount_setattr only adds the requested attributes, so flags the kernel locked (nosuid, nodev... of
 * a mount inherited into a user namespace) stay as they are instead of failing a remount. */
int set_mount_attrs(int fd, unsigned long set, unsigned long clear, bool recursive)
{
	struct mount_attr a = {0};
	for (size_t i = 0; i < sizeof attr_map / sizeof *attr_map; i++) {
		if (set & attr_map[i].ms)
			a.attr_set |= attr_map[i].attr;
		if (clear & attr_map[i].ms)
			a.attr_clr |= attr_map[i].attr;
	}
	if (set & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)) {
		a.attr_clr |= MOUNT_ATTR__ATIME;
		a.attr_set |= set & MS_NOATIME ? MOUNT_ATTR_NOATIME : set & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME : MOUNT_ATTR_RELATIME;
	}
	if (!a.attr_set && !a.attr_clr)
		return 0;
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof a) < 0)
		return fail(errno, "set mount attributes");
	return 0;
}

static int set_propagation(int fd, unsigned long prop)
{
	if (!prop)
		return 0;
	struct mount_attr a = {.propagation = prop & ~MS_REC};
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (prop & MS_REC ? AT_RECURSIVE : 0), &a, sizeof a) < 0)
		return fail(errno, "set mount propagation");
	return 0;
}

/* Mounts onto the fd `dfd` of a path inside the root, then reopens the path so the returned fd
 * is the new mount's root (attributes and propagation apply to it, not to what is below). */
static int mount_on(int rootfd, const char *dest, int *dfd, const char *src, const char *type, unsigned long flags,
		    const char *data)
{
	char t[64];
	if (mount(src, FDPATH(t, *dfd), type, flags, data) < 0)
		return fail(errno, "mount %s on `%s`", type ? type : src, dest);
	close(*dfd);
	*dfd = -1;
	return open_in_root(rootfd, dest, O_PATH, 0, dfd);
}

static int bind_mount(int rootfd, const struct mount *m, const char *dest, int *dfd)
{
	char sp[64];
	cleanup_close int src = open(m->source, O_PATH | O_CLOEXEC);
	if (src < 0)
		return fail(errno, "bind mount source `%s`", m->source);
	int r = mount_on(rootfd, dest, dfd, FDPATH(sp, src), NULL, MS_BIND | (m->flags & MS_REC), NULL);
	if (r < 0)
		return r;
	return set_mount_attrs(*dfd, m->flags, m->clear, m->flags & MS_REC);
}

/* A cgroup mount shows the container its own cgroups, with or without a cgroup namespace: on v1
 * and hybrid a tmpfs holding, per hierarchy, a bind of the container's directory; on v2 a bind of
 * that directory, or a fresh cgroup2 mount when the cgroup namespace makes it the root. */
static int mount_cgroup(int rootfd, const struct rootfs_ctx *c, const struct mount *m, int *dfd)
{
	const char *const base = "/sys/fs/cgroup";
	unsigned long fl = m->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
	if (cg_layout() == CG_V2) {
		if (c->s->ns_on[NS_CGROUP])
			return mount_on(rootfd, m->dest, dfd, "cgroup2", "cgroup2", fl, NULL);
		cleanup_free char *src = xasprintf("%s%s", base, c->cgpath);
		struct mount bm = {.source = src, .flags = MS_BIND | fl};
		return bind_mount(rootfd, &bm, m->dest, dfd);
	}
	int r = mount_on(rootfd, m->dest, dfd, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755");
	if (r < 0)
		return r;
	cleanup_close int hd = open(base, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (hd < 0)
		return fail(errno, "open %s", base);
	DIR *d cleanup_dir = fdopendir(hd);
	if (!d)
		return fail(errno, "read %s", base);
	hd = -1;
	r = 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		cleanup_free char *src = xasprintf("%s/%s%s", base, e->d_name, c->cgpath);
		cleanup_free char *dest = xasprintf("%s/%s", m->dest, e->d_name);
		if (access(src, F_OK) < 0)
			continue;
		struct mount bm = {.source = src, .flags = MS_BIND | fl};
		cleanup_close int sub = -1;
		if ((r = open_in_root(rootfd, dest, O_PATH, S_IFDIR, &sub)) == 0)
			r = bind_mount(rootfd, &bm, dest, &sub);
	}
	if (r < 0)
		return r;
	return set_mount_attrs(*dfd, m->flags & MS_RDONLY, 0, false);
}

static int do_mount(int rootfd, const struct rootfs_ctx *c, const struct mount *m)
{
	int r, mk = S_IFDIR;
	if (m->bind) {
		struct stat st;
		if (stat(m->source, &st) < 0)
			return fail(errno, "bind mount source `%s`", m->source);
		mk = S_ISDIR(st.st_mode) ? S_IFDIR : S_IFREG;
	}
	cleanup_close int dfd = -1;
	if ((r = open_in_root(rootfd, m->dest, O_PATH, mk, &dfd)) < 0)
		return r;
	if (m->bind)
		r = bind_mount(rootfd, m, m->dest, &dfd);
	else if (!strcmp(m->type, "cgroup") || !strcmp(m->type, "cgroup2"))
		r = mount_cgroup(rootfd, c, m, &dfd);
	else {
		unsigned long fl = m->flags & ~(MS_REC | MS_BIND);
		r = mount_on(rootfd, m->dest, &dfd, m->source ? m->source : m->type, m->type, fl, m->data);
		/* Inside a user namespace devpts refuses a gid that is not mapped (runc drops it too);
		 * sysfs needs a network namespace of our own, else the host's is bound read-only. */
		if (r == -EINVAL && !strcmp(m->type, "devpts") && m->data && strstr(m->data, "gid=")) {
			struct mount m2 = *m;
			cleanup_buf struct buf b = {0};
			cleanup_free char *opts = xstrdup(m->data);
			for (char *t = strtok(opts, ","); t; t = strtok(NULL, ","))
				if (strncmp(t, "gid=", 4))
					buf_printf(&b, "%s%s", b.len ? "," : "", t);
			m2.data = b.p;
			r = mount_on(rootfd, m->dest, &dfd, "devpts", "devpts", fl, m2.data);
		} else if (r == -EPERM && !strcmp(m->type, "sysfs") && c->userns) {
			struct mount bm = {.source = "/sys", .flags = MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC};
			r = bind_mount(rootfd, &bm, m->dest, &dfd);
		}
	}
	if (r < 0)
		return r;
	return set_propagation(dfd, m->propagation);
}

static int make_device(int rootfd, const struct rootfs_ctx *c, const char *path, char type, unsigned maj, unsigned min,
		       mode_t mode, uid_t uid, gid_t gid)
{
	cleanup_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	*slash = 0;
	cleanup_close int dfd = -1;
	int r = open_in_root(rootfd, *dir ? dir : "/", O_PATH | O_DIRECTORY, S_IFDIR, &dfd);
	if (r < 0)
		return r;
	const char *name = slash + 1;
	/* mknod is not allowed in a user namespace: bind the host's node instead, as runc does. */
	if (c->userns) {
		cleanup_close int f = -1;
		if ((r = open_in_root(rootfd, path, O_PATH, S_IFREG, &f)) < 0)
			return r;
		struct mount bm = {.source = path, .flags = MS_BIND};
		return bind_mount(rootfd, &bm, path, &f);
	}
	mode_t fmt = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
	if (mknodat(dfd, name, fmt | (mode & 07777), makedev(maj, min)) < 0 && errno != EEXIST)
		return fail(errno, "mknod `%s`", path);
	cleanup_close int f = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (f < 0 || fstat(f, &st) < 0 || (st.st_mode & S_IFMT) != fmt || (fmt != S_IFIFO && st.st_rdev != makedev(maj, min)))
		return fail(f < 0 ? errno : EEXIST, "device `%s` exists and is something else", path);
	char fp[64];
	if (fchmodat(AT_FDCWD, FDPATH(fp, f), mode & 07777, 0) < 0 || fchownat(f, "", uid, gid, AT_EMPTY_PATH) < 0)
		return fail(errno, "set owner and mode of `%s`", path);
	return 0;
}

static int setup_dev(int rootfd, const struct rootfs_ctx *c)
{
	static const struct { const char *path; unsigned maj, min; } defaults[] = {
		{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
		{"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0}};
	static const char *const links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
					       {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
					       {"pts/ptmx", "ptmx"}};
	const struct spec *s = c->s;
	int r;
	bool dev_tmpfs = false;
	for (size_t i = 0; i < s->n_mounts; i++)
		if (!strcmp(s->mounts[i].dest, "/dev"))
			dev_tmpfs = !s->mounts[i].bind;
	if (dev_tmpfs) {
		for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
			if ((r = make_device(rootfd, c, defaults[i].path, 'c', defaults[i].maj, defaults[i].min, 0666, 0, 0)) < 0)
				return r;
		cleanup_close int dev = -1;
		if ((r = open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY, 0, &dev)) < 0)
			return r;
		for (size_t i = 0; i < sizeof links / sizeof *links; i++)
			if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
				return fail(errno, "symlink /dev/%s", links[i][1]);
		if (access("/proc/kcore", F_OK) == 0 && symlinkat("/proc/kcore", dev, "core") < 0 && errno != EEXIST)
			return fail(errno, "symlink /dev/core");
	}
	for (size_t i = 0; i < s->n_devices; i++) {
		const struct device *d = &s->devices[i];
		if ((r = make_device(rootfd, c, d->path, d->type, d->major, d->minor, d->has_mode ? d->mode : 0666,
				     d->has_uid ? d->uid : 0, d->has_gid ? d->gid : 0)) < 0)
			return r;
	}
	return 0;
}

int rootfs_prepare(struct rootfs_ctx *c, int *rootfd_out)
{
	const struct spec *s = c->s;
	int r;
	/* Nothing we mount may propagate back to the host. */
	unsigned long prop = MS_SLAVE | MS_REC;
	if (s->rootfs_prop && strstr(s->rootfs_prop, "private"))
		prop = MS_PRIVATE | MS_REC;
	if (mount(NULL, "/", NULL, prop, NULL) < 0)
		return fail(errno, "make / a slave mount");
	if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(errno, "bind mount the rootfs `%s`", c->rootfs);
	cleanup_close int rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return fail(errno, "open rootfs `%s`", c->rootfs);
	for (size_t i = 0; i < s->n_mounts; i++)
		if ((r = do_mount(rootfd, c, &s->mounts[i])) < 0)
			return r;
	if ((r = setup_dev(rootfd, c)) < 0)
		return r;
	cleanup_close int cwd = -1;
	if ((r = open_in_root(rootfd, s->proc.cwd, O_PATH, S_IFDIR, &cwd)) < 0)
		return fail_ctx(r, "process.cwd");
	*rootfd_out = move_fd(&rootfd);
	return 0;
}

int rootfs_pivot(int rootfd)
{
	if (fchdir(rootfd) < 0)
		return fail(errno, "chdir to the rootfs");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(errno, "pivot_root");
	/* The old root is stacked under the new one: detach it without telling the host. */
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return fail(errno, "detach the old root");
	return 0;
}

static int mask_path(int rootfd, const struct rootfs_ctx *c, const char *path)
{
	cleanup_close int fd = -1;
	int r = open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0, &fd);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fail(errno, "stat masked path `%s`", path);
	char src[64];
	if (S_ISDIR(st.st_mode))
		r = mount_on(rootfd, path, &fd, "tmpfs", "tmpfs", MS_RDONLY, "size=0,nr_inodes=1");
	else
		r = mount_on(rootfd, path, &fd, FDPATH(src, c->devnull_fd), NULL, MS_BIND, NULL);
	if (r < 0)
		return fail_ctx(r, "mask `%s`", path);
	/* Verify what ended up there: a read-only empty tmpfs or the null device. */
	struct statfs sf;
	if (S_ISDIR(st.st_mode) ? fstatfs(fd, &sf) < 0 || sf.f_type != TMPFS_MAGIC || !(sf.f_flags & ST_RDONLY)
				: fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
		return fail(0, "masked path `%s` is not masked after mounting", path);
	return 0;
}

static int readonly_path(int rootfd, const char *path)
{
	cleanup_close int fd = -1;
	int r = open_in_root(rootfd, path, O_PATH, 0, &fd);
	if (r == -ENOENT)
		return 0;
	char src[64];
	if (r < 0 || (r = mount_on(rootfd, path, &fd, FDPATH(src, fd), NULL, MS_BIND | MS_REC, NULL)) < 0 ||
	    (r = set_mount_attrs(fd, MS_RDONLY, 0, true)) < 0)
		return fail_ctx(r, "read-only path `%s`", path);
	return 0;
}

static int write_sysctls(const struct spec *s)
{
	if (!s->sysctl || !s->sysctl->n)
		return 0;
	cleanup_close int dir = open("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct statfs sf;
	if (dir < 0 || fstatfs(dir, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
		return fail(dir < 0 ? errno : EINVAL, "sysctl: /proc/sys is not procfs");
	JFOR(kv, s->sysctl) {
		cleanup_free char *rel = xstrdup(kv->key);
		for (char *p = rel; *p; p++)
			if (*p == '.')
				*p = '/';
		/* No symlinks and no other filesystem: a write meant for a sysctl stays one. */
		cleanup_close int fd = openat2_in(dir, rel, O_WRONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
		if (fd < 0)
			return fail(errno, "sysctl `%s`", kv->key);
		if (write(fd, kv->s, strlen(kv->s)) < 0)
			return fail(errno, "sysctl `%s` = `%s`", kv->key, kv->s);
	}
	return 0;
}

int rootfs_finish(struct rootfs_ctx *c)
{
	const struct spec *s = c->s;
	cleanup_close int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r;
	if (rootfd < 0)
		return fail(errno, "open /");
	if ((r = write_sysctls(s)) < 0)
		return r;
	/* The masking source is the container's /dev/null (the host's is not in this mount
	 * namespace any more): no symlinks, and it must really be the null device (CVE-2025-31133). */
	if (s->masked && s->masked[0]) {
		struct stat st;
		c->devnull_fd = openat2_in(rootfd, "/dev/null", O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
		if (c->devnull_fd < 0 || fstat(c->devnull_fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
			return fail(EINVAL, "maskedPaths: the container's /dev/null is not the null device");
	}
	for (size_t i = 0; s->masked && s->masked[i]; i++)
		if ((r = mask_path(rootfd, c, s->masked[i])) < 0)
			return r;
	for (size_t i = 0; s->readonly && s->readonly[i]; i++)
		if ((r = readonly_path(rootfd, s->readonly[i])) < 0)
			return r;
	if (s->rootfs_prop) {
		static const struct { const char *n; unsigned long f; } props[] = {
			{"shared", MS_SHARED}, {"rshared", MS_SHARED | MS_REC}, {"slave", MS_SLAVE}, {"rslave", MS_SLAVE | MS_REC},
			{"private", MS_PRIVATE}, {"rprivate", MS_PRIVATE | MS_REC}, {"unbindable", MS_UNBINDABLE},
			{"runbindable", MS_UNBINDABLE | MS_REC}};
		size_t k = 0;
		while (k < sizeof props / sizeof *props && strcmp(props[k].n, s->rootfs_prop))
			k++;
		if (k == sizeof props / sizeof *props)
			return fail(0, "unknown rootfsPropagation `%s`", s->rootfs_prop);
		if (mount(NULL, "/", NULL, props[k].f, NULL) < 0)
			return fail(errno, "rootfsPropagation `%s`", s->rootfs_prop);
	}
	if (s->root_ro && (r = set_mount_attrs(rootfd, MS_RDONLY, 0, false)) < 0)
		return fail_ctx(r, "make the rootfs read-only");
	return 0;
}
