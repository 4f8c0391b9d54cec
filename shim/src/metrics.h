/* Task/Stats: the task's cgroup statistics as containerd's metrics types. */
#pragma once
#include "pb.h"

/* Reads the cgroup at `cgroups_path` (the spec's linux.cgroupsPath) and encodes
 * containerd.cgroups.v1.Metrics (hybrid or v1 hosts) or io.containerd.cgroups.v2.Metrics (pure
 * cgroup2 hosts) into `out`, with its type URL in *type_url (a static string). 0 or -errno. */
int cgroup_metrics(const char *cgroups_path, pb_buf *out, const char **type_url);
