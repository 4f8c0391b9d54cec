/* A test peer for the shim's C ttrpc, protobuf and SHA-256 code, driven by
 * test/integration/shim/ttrpc-c.test.ts against berthd's TypeScript ttrpc.
 *
 *   ttrpc-echo serve SOCKET       serves berth.test.Echo; "ready" on stdout; SIGTERM stops it
 *   ttrpc-echo call SOCKET SERVICE METHOD TIMEOUT_MS [-m KEY=VALUE]... HEX...
 *                                 one call per HEX request payload, all on one connection; prints
 *                                 "ok HEX", "status CODE MESSAGE" or "error ERRNO MESSAGE" for each
 *   ttrpc-echo sha256             sha256_hex of stdin
 *   ttrpc-echo pb                 a sample message of every pb_put_* kind, as hex
 *
 * berth.test.Echo takes EchoRequest{bytes data=1; string key=2; uint32 sleep_ms=3; uint32 code=4;
 * string message=5; uint32 size=6} and answers EchoResponse{bytes data=1; string value=2}:
 *   Echo   data back (or `size` bytes of 'x'), value = the request metadata `key`
 *   Sleep  the same after sleep_ms, on its own thread like every call
 *   Fail   status `code` with `message` */
#include <signal.h>
#include <time.h>

#include "pb.h"
#include "sha256.h"
#include "ttrpc.h"
#include "util.h"

struct echo_req {
	uint8_t *data;
	size_t len;
	char *key, *message;
	uint32_t sleep_ms, code, size;
};

static void echo_req_free(struct echo_req *r)
{
	free(r->data);
	free(r->key);
	free(r->message);
}

static int parse(struct ttrpc_call *call, struct echo_req *r)
{
	size_t len;
	const uint8_t *p = ttrpc_call_payload(call, &len);
	pb_reader rd = pb_reader_of(p, len);
	pb_field f;
	int ret;
	while ((ret = pb_next(&rd, &f)) > 0) {
		switch (f.number) {
		case 1:
			free(r->data);
			ret = pb_bytes(&f, &r->data, &r->len);
			break;
		case 2:
			ret = pb_string(&f, &r->key);
			break;
		case 3:
			r->sleep_ms = f.varint;
			break;
		case 4:
			r->code = f.varint;
			break;
		case 5:
			ret = pb_string(&f, &r->message);
			break;
		case 6:
			r->size = f.varint;
			break;
		}
		if (ret < 0)
			return ret;
	}
	return ret;
}

static void answer(struct ttrpc_call *call, const struct echo_req *r)
{
	cleanup_pb pb_buf resp = {0};
	if (r->size) {
		cleanup_free uint8_t *big = malloc(r->size);
		if (!big) {
			ttrpc_fail(call, RPC_INTERNAL, "out of memory");
			return;
		}
		memset(big, 'x', r->size);
		pb_put_bytes(&resp, 1, big, r->size);
	} else {
		pb_put_bytes(&resp, 1, r->data, r->len);
	}
	pb_put_string(&resp, 2, r->key ? ttrpc_call_metadata(call, r->key) : NULL);
	ttrpc_reply(call, &resp);
}

static void echo(struct ttrpc_call *call)
{
	__attribute__((cleanup(echo_req_free))) struct echo_req r = {0};
	if (parse(call, &r) < 0) {
		ttrpc_fail(call, RPC_INVALID_ARGUMENT, "%s", g_err);
		return;
	}
	answer(call, &r);
}

static void sleep_then_echo(struct ttrpc_call *call)
{
	__attribute__((cleanup(echo_req_free))) struct echo_req r = {0};
	if (parse(call, &r) < 0) {
		ttrpc_fail(call, RPC_INVALID_ARGUMENT, "%s", g_err);
		return;
	}
	struct timespec ts = { r.sleep_ms / 1000, (long)(r.sleep_ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	answer(call, &r);
}

static void fail_as_asked(struct ttrpc_call *call)
{
	__attribute__((cleanup(echo_req_free))) struct echo_req r = {0};
	if (parse(call, &r) < 0) {
		ttrpc_fail(call, RPC_INVALID_ARGUMENT, "%s", g_err);
		return;
	}
	ttrpc_fail(call, r.code, "%s", r.message ? r.message : "");
}

static const ttrpc_method methods[] = {
	{ "berth.test.Echo", "Echo", echo },
	{ "berth.test.Echo", "Sleep", sleep_then_echo },
	{ "berth.test.Echo", "Fail", fail_as_asked },
};

static int serve(const char *path)
{
	/* As berth-shim does: signals are blocked before any thread starts, and waited for here. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (ttrpc_serve(path, methods, sizeof methods / sizeof methods[0]) < 0) {
		fprintf(stderr, "ttrpc-echo: %s\n", g_err);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	ttrpc_stop_listening();
	ttrpc_close_all(1000);
	return 0;
}

static void print_hex(const char *prefix, const uint8_t *p, size_t len)
{
	printf("%s", prefix);
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
	printf("\n");
}

/* Hex digits into out's bytes: the request message as the test encoded it. */
static int unhex(const char *s, pb_buf *out)
{
	size_t n = strlen(s);
	if (n % 2)
		return fail(EINVAL, "odd hex length");
	out->data = malloc(n / 2 + 1);
	if (!out->data)
		return fail(ENOMEM, "request");
	out->cap = n / 2 + 1;
	for (size_t i = 0; i < n; i += 2) {
		unsigned byte;
		if (sscanf(s + i, "%2x", &byte) != 1)
			return fail(EINVAL, "bad hex at %zu", i);
		out->data[out->len++] = byte;
	}
	return 0;
}

static int call(int argc, char **argv)
{
	if (argc < 6)
		return fprintf(stderr, "usage: ttrpc-echo call SOCKET SERVICE METHOD TIMEOUT_MS [-m K=V]... HEX...\n"), 2;
	const char *sock = argv[2], *service = argv[3], *method = argv[4];
	int timeout = atoi(argv[5]);
	ttrpc_kv md[16];
	size_t n_md = 0;
	int i = 6;
	for (; i + 1 < argc && !strcmp(argv[i], "-m") && n_md < 16; i += 2) {
		char *eq = strchr(argv[i + 1], '=');
		if (!eq)
			return fprintf(stderr, "ttrpc-echo: -m wants KEY=VALUE\n"), 2;
		*eq = 0;
		md[n_md++] = (ttrpc_kv){ argv[i + 1], eq + 1 };
	}
	ttrpc_client *c;
	if (ttrpc_connect(sock, timeout, &c) < 0) {
		printf("error %d %s\n", errno, g_err);
		return 0;
	}
	for (; i < argc; i++) {
		cleanup_pb pb_buf req = {0}, resp = {0};
		if (unhex(argv[i], &req) < 0)
			return fprintf(stderr, "ttrpc-echo: %s\n", g_err), 2;
		enum rpc_code code;
		int ret = ttrpc_call(c, service, method, md, n_md, &req, timeout, &resp, &code);
		if (ret < 0)
			printf("error %d %s\n", -ret, g_err);
		else if (code != RPC_OK)
			printf("status %d %s\n", code, g_err);
		else
			print_hex("ok ", resp.data, resp.len);
		fflush(stdout);
	}
	ttrpc_client_close(c);
	return 0;
}

static int hash_stdin(void)
{
	/* Read, not opened by name: the test's stdin is a socket, which /dev/stdin cannot reopen. */
	cleanup_pb pb_buf in = {0};
	for (;;) {
		uint8_t chunk[65536];
		ssize_t n = read(0, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fprintf(stderr, "ttrpc-echo: read stdin: %s\n", strerror(errno)), 1;
		if (n == 0)
			break;
		uint8_t *grown = realloc(in.data, in.len + n);
		if (!grown)
			return fprintf(stderr, "ttrpc-echo: out of memory\n"), 1;
		memcpy(grown + in.len, chunk, n);
		in.data = grown;
		in.len += n;
	}
	char hex[65];
	sha256_hex(in.data, in.len, hex);
	printf("%s\n", hex);
	return 0;
}

/* Sample{uint64 u=1; int64 neg=2; int32 neg32=3; bool yes=4; string s=5; bytes b=6;
 * Timestamp before_epoch=7; Timestamp epoch=8; Any any=9; Sample empty=10; all defaults at 11-15}. */
static int sample(void)
{
	cleanup_pb pb_buf m = {0}, value = {0}, empty = {0};
	pb_put_uint(&m, 1, UINT64_MAX);
	pb_put_int(&m, 2, INT64_MIN);
	pb_put_int(&m, 3, -2);
	pb_put_bool(&m, 4, true);
	pb_put_string(&m, 5, "héllo");
	pb_put_bytes(&m, 6, "\0\1\2", 3);
	pb_put_timestamp(&m, 7, -1500000000);
	pb_put_timestamp(&m, 8, 0);
	pb_put_string(&value, 5, "inner");
	pb_put_any(&m, 9, "berth.test.Sample", &value);
	pb_put_message(&m, 10, &empty);
	pb_put_uint(&m, 11, 0);
	pb_put_int(&m, 12, 0);
	pb_put_bool(&m, 13, false);
	pb_put_string(&m, 14, "");
	pb_put_string(&m, 14, NULL);
	pb_put_bytes(&m, 15, "", 0);
	if (m.oom)
		return fprintf(stderr, "ttrpc-echo: out of memory\n"), 1;
	print_hex("", m.data, m.len);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(argv[2]);
	if (argc >= 2 && !strcmp(argv[1], "call"))
		return call(argc, argv);
	if (argc == 2 && !strcmp(argv[1], "sha256"))
		return hash_stdin();
	if (argc == 2 && !strcmp(argv[1], "pb"))
		return sample();
	fprintf(stderr, "usage: ttrpc-echo serve SOCKET | call SOCKET SERVICE METHOD TIMEOUT_MS [-m K=V]... HEX... | sha256 | pb\n");
	return 2;
}
