#include "sealed_exe.h"

#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x10U
#endif

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* One per runtime binary the shim has spawned; a shim rarely sees more than one. */
struct copy {
	struct copy *next;
	char *binary; /* as the options name it */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int fd; /* the sealed memfd, or -1: spawn `binary` itself */
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct copy *copies;

/* posix_spawnp's lookup, so the copy is of the file the runtime would have run. */
static int resolve(const char *binary, char out[PATH_MAX])
{
	if (strchr(binary, '/'))
		return snprintf(out, PATH_MAX, "%s", binary) < PATH_MAX ? 0 : -ENAMETOOLONG;
	const char *env = getenv("PATH");
	cleanup_free char *dirs = xstrdup(env ? env : "/usr/local/bin:/usr/bin:/bin");
	char *save;
	for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		if (snprintf(out, PATH_MAX, "%s/%s", *dir ? dir : ".", binary) < PATH_MAX && access(out, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static bool same_file(const struct copy *c, const struct stat *st)
{
	return c->dev == st->st_dev && c->ino == st->st_ino && c->size == st->st_size &&
	       c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static bool is_elf(int fd)
{
	char magic[4];
	return pread(fd, magic, sizeof magic, 0) == sizeof magic && !memcmp(magic, "\177ELF", 4);
}

/* A sealed memfd holding the file open as `src`, or -1. */
static int seal_copy(int src, const struct stat *st, const char *path)
{
	/* Named after the file, so /proc/<pid>/exe reads "/memfd:berth-runtime (deleted)". memfd
	 * names are at most 249 bytes. */
	const char *slash = strrchr(path, '/');
	char base[200];
	snprintf(base, sizeof base, "%.199s", slash ? slash + 1 : path);
	int mfd = memfd_create(base, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (mfd < 0 && errno == EINVAL) /* kernels before 6.3 know no MFD_EXEC */
		mfd = memfd_create(base, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -1;
	for (off_t off = 0; off < st->st_size;) {
		if (sendfile(mfd, src, &off, st->st_size - off) <= 0) {
			close(mfd);
			return -1;
		}
	}
	if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0) {
		close(mfd);
		return -1;
	}
	return mfd;
}

/* Brings `c` up to date with the file at `path`. Called with the write lock held. */
static void refresh(struct copy *c, const char *path)
{
	close_owned(&c->fd);
	c->dev = 0;
	c->ino = 0;
	cleanup_close int src = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (src < 0 || fstat(src, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = st.st_size;
	c->mtime = st.st_mtim;
	if (is_elf(src))
		c->fd = seal_copy(src, &st, path);
}

static struct copy *find(const char *binary)
{
	for (struct copy *c = copies; c; c = c->next)
		if (!strcmp(c->binary, binary))
			return c;
	return NULL;
}

/* The up-to-date entry for `binary`, or NULL if it is not current; read lock held. */
static const struct copy *current(const char *binary, const char *path)
{
	const struct copy *c = find(binary);
	struct stat st;
	return c && stat(path, &st) == 0 && same_file(c, &st) ? c : NULL;
}

const char *sealed_exe_acquire(const char *binary, char exe[32])
{
	char path[PATH_MAX];
	pthread_rwlock_rdlock(&lock);
	if (resolve(binary, path) < 0)
		return binary;
	const struct copy *c = current(binary, path);
	if (!c) {
		pthread_rwlock_unlock(&lock);
		pthread_rwlock_wrlock(&lock);
		struct copy *w = find(binary);
		if (!w) {
			w = xzalloc(sizeof *w);
			w->binary = xstrdup(binary);
			w->fd = -1;
			w->next = copies;
			copies = w;
		}
		refresh(w, path);
		/* A writer may not take the read lock back atomically; the copy just made stays
		 * valid until the next writer, which needs this thread to release first. */
		c = w;
	}
	if (c->fd < 0)
		return binary;
	snprintf(exe, 32, "/proc/self/fd/%d", c->fd);
	return exe;
}

void sealed_exe_release(void)
{
	pthread_rwlock_unlock(&lock);
}
