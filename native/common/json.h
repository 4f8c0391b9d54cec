/* A small strict JSON reader. Debian ships yajl and json-c, but config.json is a few KB read once
 * per process: a 200-line parser into an arena costs less to start and to audit than a library.
 * Every node and string lives in one arena that the caller frees with json_free. */
#pragma once
#include "util.h"

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype type;
	bool b;
	bool is_int;      /* a number without fraction or exponent that fits in int64 */
	int64_t i;
	double d;
	const char *s;    /* J_STR value */
	const char *key;  /* set when this node is an object member */
	struct jv *child; /* first element / member */
	struct jv *next;
	size_t n;         /* number of elements / members */
};

struct jdoc { struct jv *root; void *arena; };

int json_parse(struct jdoc *doc, const char *text, size_t len);
void json_free(struct jdoc *doc);
#define cleanup_json __attribute__((cleanup(json_free)))

struct jv *jget(const struct jv *obj, const char *key);
#define JFOR(el, arr) for (struct jv *el = (arr) ? (arr)->child : NULL; el; el = el->next)

/* Typed accessors: absent members leave *out untouched and return 0; present members of the
 * wrong type fail with a message naming the key. */
int jstr(const struct jv *obj, const char *key, const char **out);
int jbool(const struct jv *obj, const char *key, bool *out);
int jint(const struct jv *obj, const char *key, int64_t min, int64_t max, int64_t *out, bool *present);
int jtyped(const struct jv *obj, const char *key, enum jtype t, struct jv **out);
void *arena_alloc(struct jdoc *doc, size_t n);
