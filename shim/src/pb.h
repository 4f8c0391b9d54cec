/* Protocol buffers wire format, just what berth-shim's hand-written messages need: a growable
 * writer with proto3 default omission, and a field-by-field reader. No generated code: the shim
 * speaks about thirty small messages, and protobuf-c would add a library and a code generator
 * for what is a few hundred lines here. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pb_wire { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

/* Writer. A failed allocation sets `oom` and later writes do nothing; check it once at the end. */
typedef struct pb_buf {
	uint8_t *data;
	size_t len, cap;
	bool oom;
} pb_buf;

void pb_buf_free(pb_buf *b);
#define cleanup_pb __attribute__((cleanup(pb_buf_free)))

/* Proto3 scalars: nothing is written for 0, false, NULL or "". */
void pb_put_uint(pb_buf *b, int field, uint64_t v);   /* uint32, uint64, enum */
void pb_put_int(pb_buf *b, int field, int64_t v);     /* int32, int64: negatives take 10 bytes */
void pb_put_bool(pb_buf *b, int field, bool v);
void pb_put_string(pb_buf *b, int field, const char *s);
void pb_put_bytes(pb_buf *b, int field, const void *data, size_t len);
/* A submessage (or any length-delimited field), written even when empty: presence matters for
 * messages such as a Timestamp. */
void pb_put_message(pb_buf *b, int field, const pb_buf *m);
/* google.protobuf.Timestamp at field `field`, from CLOCK_REALTIME nanoseconds. */
void pb_put_timestamp(pb_buf *b, int field, int64_t unix_ns);
/* google.protobuf.Any{type_url, value} at field `field`. */
void pb_put_any(pb_buf *b, int field, const char *type_url, const pb_buf *value);

/* Reader. */
typedef struct pb_reader {
	const uint8_t *p, *end;
} pb_reader;

typedef struct pb_field {
	int number;
	enum pb_wire wire;
	uint64_t varint;       /* PB_VARINT, PB_I64 and PB_I32 values */
	const uint8_t *data;   /* PB_LEN */
	size_t len;            /* PB_LEN */
} pb_field;

static inline pb_reader pb_reader_of(const void *data, size_t len)
{
	return (pb_reader){ .p = data, .end = (const uint8_t *)data + len };
}
/* 1: *f holds the next field; 0: end of message; -EBADMSG: malformed (message in g_err). */
int pb_next(pb_reader *r, pb_field *f);
/* A PB_LEN field as a NUL-terminated string: malloc'd copy into *out (freeing the previous one).
 * -EBADMSG if the field is not length-delimited or holds a NUL byte, -ENOMEM. */
int pb_string(const pb_field *f, char **out);
/* A PB_LEN field's bytes, malloc'd (*out NULL and *len 0 when empty). */
int pb_bytes(const pb_field *f, uint8_t **out, size_t *len);
