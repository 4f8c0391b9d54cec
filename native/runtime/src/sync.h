/* The parent and the container's init talk over a SOCK_SEQPACKET pair: each message is one
 * record, and a failure in the init travels back as SYNC_ERROR with its text, so `create` reports
 * the real reason instead of "init exited". */
#pragma once
#include "util.h"

enum sync_type {
	SYNC_GO = 1,      /* parent -> child: cgroups and id maps are in place */
	SYNC_USERMAP,     /* child -> parent: write the id maps of pid `value` */
	SYNC_USERMAP_DONE,
	SYNC_PID,         /* child -> parent: the container init is pid `value` (it had to fork) */
	SYNC_HOOKS,       /* child -> parent: namespaces exist, run prestart/createRuntime */
	SYNC_HOOKS_DONE,
	SYNC_READY,       /* child -> parent: waiting on the exec fifo / about to exec */
	SYNC_ERROR,
};

struct sync_msg { int type, value; char text[8192]; };

int sync_send(int fd, int type, int value, const char *text);
/* Receives one message; SYNC_ERROR turns into a failure carrying the child's text. */
int sync_recv(int fd, struct sync_msg *m);
int sync_expect(int fd, int type);
