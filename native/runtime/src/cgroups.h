/* Cgroups for v1, v2 and the hybrid layout (v1 controllers plus a cgroup2 mount at
 * /sys/fs/cgroup/unified, which may itself hold controllers such as hugetlb). */
#pragma once
#include "spec.h"

enum cg_layout { CG_V1, CG_HYBRID, CG_V2 };
int cg_layout(void);
/* The cgroup path (relative to each hierarchy's root) for a config's cgroupsPath. */
char *cg_path(const char *cgroups_path, const char *id);
int cg_create(const char *path, const struct spec *s);
/* Opens the cgroup2 directory for CLONE_INTO_CGROUP; -1 without an error when there is none. */
int cg_open_unified(const char *path);
/* Writes pid to cgroup.procs in the cgroup2 hierarchy: for a kernel without CLONE_INTO_CGROUP. */
int cg_attach_unified(const char *path, pid_t pid);
/* The v1 hierarchies' `tasks` files of a cgroup, opened by the parent for a child that joins
 * them itself before it runs anything else (cg_join_self, which also closes them). */
struct cg_tasks {
	int fd[16];
	int n;
};
int cg_tasks_open(const char *path, struct cg_tasks *t);
int cg_join_self(struct cg_tasks *t);
void cg_tasks_close(struct cg_tasks *t);
int cg_destroy(const char *path);
int cg_pids(const char *path, pid_t **out, size_t *n);
int cg_freeze(const char *path, bool freeze);
bool cg_frozen(const char *path);
