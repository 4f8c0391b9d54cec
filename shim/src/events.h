/* Task events forwarded to the daemon's ttrpc Events service
 * (containerd.services.events.ttrpc.v1.Events/Forward, at TTRPC_ADDRESS), in order, each exactly
 * once: every event gets this shim's next sequence number and is retried with it until the
 * daemon answers, so the daemon drops a duplicate whose first answer was lost. While the daemon
 * is away the queue grows in memory and is replayed when it is back. One thread delivers. */
#pragma once
#include "pb.h"

/* Metadata keys the daemon deduplicates on: (shim id, seq) is delivered at most once. */
#define EVENT_SEQ_KEY "berth-event-seq"
#define EVENT_SHIM_ID_KEY "berth-shim-id"

/* Starts the delivery thread for `address` (empty: events are dropped, nobody could read them).
 * The shim id is a random UUID per process. 0 or -errno. */
int events_start(const char *address);
/* Queues containerd.events.<type> (e.g. type "TaskExit") for topic (e.g. "/tasks/exit"), stamped
 * now. `event` is the encoded event message; it is copied. Thread-safe, never blocks on I/O. */
void events_publish(const char *ns, const char *topic, const char *type, const pb_buf *event);
/* Waits until everything queued so far is delivered, at most `timeout_ms`. */
void events_flush(int timeout_ms);
/* Events not yet delivered. */
size_t events_pending(void);
