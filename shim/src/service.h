/* containerd.task.v2.Task for every task of this shim's group. */
#pragma once
#include <stddef.h>
#include "ttrpc.h"

extern const ttrpc_method task_methods[];
extern const size_t task_methods_len;

/* Becomes a child subreaper and starts the exit watcher. 0 or -errno. */
int service_init(void);
/* Tasks held plus Creates in progress (the lifecycle's idea of "busy"). */
int service_task_count(void);
