/* The container's filesystem view: rootfs, spec mounts, devices, pivot_root, masked and
 * read-only paths, sysctls. Every path inside the rootfs is resolved with openat2
 * RESOLVE_IN_ROOT and mounted through its fd, so a symlink cannot point a mount at the host. */
#pragma once
#include "spec.h"

struct rootfs_ctx {
	const struct spec *s;
	const char *rootfs, *cgpath;
	bool userns;
	int devnull_fd; /* the verified /dev/null, source for masking files */
};

int open_in_root(int rootfd, const char *path, int flags, int mkmode, int *out);
int rootfs_prepare(struct rootfs_ctx *c, int *rootfd_out);
int rootfs_pivot(int rootfd);
int rootfs_finish(struct rootfs_ctx *c);
int set_mount_attrs(int fd, unsigned long set, unsigned long clear, bool recursive);
