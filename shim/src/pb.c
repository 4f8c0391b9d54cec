#include "pb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void pb_buf_free(pb_buf *b)
{
	free(b->data);
	*b = (pb_buf){0};
}

static bool reserve(pb_buf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	uint8_t *p = realloc(b->data, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

static void put_raw(pb_buf *b, const void *data, size_t len)
{
	if (len && reserve(b, len)) {
		memcpy(b->data + b->len, data, len);
		b->len += len;
	}
}

static void put_varint(pb_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		tmp[n++] = (uint8_t)(v & 0x7f) | (v > 0x7f ? 0x80 : 0);
		v >>= 7;
	} while (v);
	put_raw(b, tmp, n);
}

static void put_key(pb_buf *b, int field, enum pb_wire wire)
{
	put_varint(b, (uint64_t)field << 3 | wire);
}

static void put_len(pb_buf *b, int field, const void *data, size_t len)
{
	put_key(b, field, PB_LEN);
	put_varint(b, len);
	put_raw(b, data, len);
}

void pb_put_uint(pb_buf *b, int field, uint64_t v)
{
	if (!v)
		return;
	put_key(b, field, PB_VARINT);
	put_varint(b, v);
}

/* Sign extension to 64 bits is what makes a negative int32 take 10 bytes too, as protobuf requires. */
void pb_put_int(pb_buf *b, int field, int64_t v)
{
	pb_put_uint(b, field, (uint64_t)v);
}

void pb_put_bool(pb_buf *b, int field, bool v)
{
	pb_put_uint(b, field, v);
}

void pb_put_string(pb_buf *b, int field, const char *s)
{
	if (s && *s)
		put_len(b, field, s, strlen(s));
}

void pb_put_bytes(pb_buf *b, int field, const void *data, size_t len)
{
	if (len)
		put_len(b, field, data, len);
}

void pb_put_message(pb_buf *b, int field, const pb_buf *m)
{
	if (m->oom) {
		b->oom = true;
		return;
	}
	put_len(b, field, m->data, m->len);
}

void pb_put_timestamp(pb_buf *b, int field, int64_t unix_ns)
{
	/* Timestamp.nanos is never negative: times before 1970 borrow a second. */
	int64_t sec = unix_ns / 1000000000, nsec = unix_ns % 1000000000;
	if (nsec < 0) {
		sec--;
		nsec += 1000000000;
	}
	cleanup_pb pb_buf ts = {0};
	pb_put_int(&ts, 1, sec);
	pb_put_int(&ts, 2, nsec);
	pb_put_message(b, field, &ts);
}

void pb_put_any(pb_buf *b, int field, const char *type_url, const pb_buf *value)
{
	cleanup_pb pb_buf any = {0};
	pb_put_string(&any, 1, type_url);
	if (value->oom)
		any.oom = true;
	else
		pb_put_bytes(&any, 2, value->data, value->len);
	pb_put_message(b, field, &any);
}

static int get_varint(pb_reader *r, uint64_t *v, const char *what)
{
	uint64_t x = 0;
	for (int i = 0; i < 10; i++) {
		if (r->p == r->end)
			return fail(EBADMSG, "protobuf: truncated %s", what);
		uint8_t c = *r->p++;
		/* The tenth byte holds only bit 63; anything more is an overflow, not a number. */
		if (i == 9 && c > 1)
			break;
		x |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return fail(EBADMSG, "protobuf: %s overflows 64 bits", what);
}

static int get_fixed(pb_reader *r, size_t n, uint64_t *v)
{
	if ((size_t)(r->end - r->p) < n)
		return fail(EBADMSG, "protobuf: truncated fixed-width field");
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++)
		x |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	*v = x;
	return 0;
}

int pb_next(pb_reader *r, pb_field *f)
{
	if (r->p == r->end)
		return 0;
	uint64_t key;
	int ret = get_varint(r, &key, "field key");
	if (ret < 0)
		return ret;
	uint64_t number = key >> 3;
	if (number == 0 || number > 0x1fffffff)
		return fail(EBADMSG, "protobuf: invalid field number %llu", (unsigned long long)number);
	*f = (pb_field){ .number = (int)number, .wire = key & 7 };
	switch (key & 7) {
	case PB_VARINT:
		ret = get_varint(r, &f->varint, "varint");
		break;
	case PB_I64:
		ret = get_fixed(r, 8, &f->varint);
		break;
	case PB_I32:
		ret = get_fixed(r, 4, &f->varint);
		break;
	case PB_LEN: {
		uint64_t len;
		ret = get_varint(r, &len, "length");
		if (ret < 0)
			break;
		if (len > (uint64_t)(r->end - r->p)) {
			ret = fail(EBADMSG, "protobuf: field %d is %llu bytes, only %zu left", f->number,
				   (unsigned long long)len, (size_t)(r->end - r->p));
			break;
		}
		f->data = r->p;
		f->len = len;
		r->p += len;
		break;
	}
	default:
		ret = fail(EBADMSG, "protobuf: field %d has unsupported wire type %d", f->number, (int)(key & 7));
	}
	return ret < 0 ? ret : 1;
}

int pb_string(const pb_field *f, char **out)
{
	if (f->wire != PB_LEN)
		return fail(EBADMSG, "protobuf: field %d is not a string", f->number);
	if (f->len && memchr(f->data, 0, f->len))
		return fail(EBADMSG, "protobuf: field %d holds a NUL byte", f->number);
	char *s = malloc(f->len + 1);
	if (!s)
		return fail(ENOMEM, "protobuf: field %d", f->number);
	if (f->len)
		memcpy(s, f->data, f->len);
	s[f->len] = 0;
	free(*out);
	*out = s;
	return 0;
}

int pb_bytes(const pb_field *f, uint8_t **out, size_t *len)
{
	if (f->wire != PB_LEN)
		return fail(EBADMSG, "protobuf: field %d is not length-delimited", f->number);
	*out = NULL;
	*len = 0;
	if (!f->len)
		return 0;
	*out = malloc(f->len);
	if (!*out)
		return fail(ENOMEM, "protobuf: field %d", f->number);
	memcpy(*out, f->data, f->len);
	*len = f->len;
	return 0;
}
