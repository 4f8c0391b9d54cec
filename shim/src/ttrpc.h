/* ttrpc (containerd's RPC over a unix socket): frames of a 10-byte header (uint32 BE length,
 * uint32 BE stream id, uint8 type 1=request 2=response, uint8 flags) and a protobuf payload of at
 * most 4 MiB. Request: service=1, method=2, payload=3, timeout_nano=4, metadata=5 (repeated
 * KeyValue{key=1,value=2}). Response: status=1 (google.rpc.Status{code=1,message=2}), payload=2.
 *
 * Server threading: one thread accepts, one thread per connection reads frames, and each request
 * runs its handler on a thread of its own, so a slow runtime call or a Wait that lasts for hours
 * never holds up another request. Replies go out under the connection's write lock. A call whose
 * caller is gone is cancelled (below), so that a handler blocked for it can end. */
#pragma once
#include <stdint.h>
#include "pb.h"

/* google.rpc codes used by the shim (the gRPC status code numbers). */
enum rpc_code {
	RPC_OK = 0, RPC_CANCELLED = 1, RPC_UNKNOWN = 2, RPC_INVALID_ARGUMENT = 3,
	RPC_DEADLINE_EXCEEDED = 4, RPC_NOT_FOUND = 5, RPC_ALREADY_EXISTS = 6,
	RPC_FAILED_PRECONDITION = 9, RPC_UNIMPLEMENTED = 12, RPC_INTERNAL = 13, RPC_UNAVAILABLE = 14,
};

#define TTRPC_MAX_PAYLOAD (4u << 20)

/* One request being served. Valid from the handler's start until ttrpc_reply/ttrpc_fail. A struct
 * tag, not a typedef: the client's ttrpc_call() function owns that name. */
struct ttrpc_call;

/* The request's payload (the method's request message). */
const uint8_t *ttrpc_call_payload(const struct ttrpc_call *call, size_t *len);
/* The value of request metadata `key` (the last one if repeated), or NULL. */
const char *ttrpc_call_metadata(const struct ttrpc_call *call, const char *key);

/* Answers the call and frees it; exactly one of these per call, from any thread. A reply to a
 * connection that has closed is dropped. `payload` may be NULL (an empty message). */
void ttrpc_reply(struct ttrpc_call *call, const pb_buf *payload);
void ttrpc_fail(struct ttrpc_call *call, enum rpc_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Cancellation. A call is cancelled when its connection closes (the peer went away, or
 * ttrpc_close_all closed it) or when its timeout_nano passes (the caller has DEADLINE_EXCEEDED by
 * then). Nobody can read its answer any more, but its handler runs on until it answers (the answer
 * is dropped): a handler that may block for long registers a hook that makes it stop.
 *
 * ttrpc_call_on_cancel sets the call's hook, replacing the one before (fn NULL: none).
 * - fn(data) runs at most once: when the call is cancelled, on the thread that cancels it (the
 *   connection's reader or the deadline thread), or before this returns, on the calling thread,
 *   if the call is cancelled already. No ttrpc lock is held while it runs; it must not block
 *   (it is there to wake the handler) and must not call ttrpc_* on this call.
 * - Once ttrpc_call_on_cancel returns, the hook it replaced is not running and never will; so is
 *   the call's hook once ttrpc_reply or ttrpc_fail returns. Then its `data` may go. Each waits for
 *   a hook running on another thread to return first: call none of them holding a lock fn takes.
 * Only the handler's thread may call it, before its answer. */
void ttrpc_call_on_cancel(struct ttrpc_call *call, void (*fn)(void *data), void *data);

/* Runs on its own thread; must end the call with ttrpc_reply or ttrpc_fail. */
typedef void (*ttrpc_handler)(struct ttrpc_call *call);

typedef struct ttrpc_method {
	const char *service; /* "containerd.task.v2.Task" */
	const char *method;  /* "Create" */
	ttrpc_handler fn;
} ttrpc_method;

/* Listens on socket file `path` (mode 0600; an existing file is replaced) and serves `methods`
 * (unknown ones get UNIMPLEMENTED) on background threads. Returns 0 or -errno (g_err). */
int ttrpc_serve(const char *path, const ttrpc_method *methods, size_t n_methods);
/* Removes the socket file and stops accepting; connections and calls in flight go on. */
void ttrpc_stop_listening(void);
/* Waits until every call dispatched before it has replied (its answer written, or dropped if its
 * connection closed), then closes every connection, which cancels the calls still running; all
 * within `timeout_ms`. Not from a handler: it would wait for its own call until the timeout. */
void ttrpc_close_all(int timeout_ms);

/* Client: one caller at a time per client (the shim's event publisher, `start`'s Connect). */
typedef struct ttrpc_client ttrpc_client;

typedef struct ttrpc_kv {
	const char *key, *value;
} ttrpc_kv;

/* 0 or -errno (g_err). */
int ttrpc_connect(const char *path, int timeout_ms, ttrpc_client **out);
/* Sends one request and waits up to `timeout_ms` for its response (also sent as timeout_nano).
 * Returns 0 when a response arrived: *code is its status code (RPC_OK or not, message in g_err
 * when not) and, when RPC_OK, `resp` (may be NULL) receives the payload. Returns -errno for a
 * transport failure (-ETIMEDOUT, -ECONNRESET, -EPIPE, ...), after which the client is unusable. */
int ttrpc_call(ttrpc_client *c, const char *service, const char *method,
	       const ttrpc_kv *md, size_t n_md, const pb_buf *req, int timeout_ms,
	       pb_buf *resp, enum rpc_code *code);
void ttrpc_client_close(ttrpc_client *c);
