#include "json.h"

struct chunk { struct chunk *next; size_t used, cap; char data[]; };

void *arena_alloc(struct jdoc *doc, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct chunk *c = doc->arena;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		struct chunk *nc = malloc(sizeof *nc + cap);
		if (!nc)
			abort();
		nc->next = c;
		nc->used = 0;
		nc->cap = cap;
		doc->arena = c = nc;
	}
	void *p = c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

void json_free(struct jdoc *doc)
{
	for (struct chunk *c = doc->arena, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	doc->arena = NULL;
}

struct parser { struct jdoc *doc; const char *start, *p, *end; int depth; };

static int perr(struct parser *ps, const char *what)
{
	return fail(0, "invalid JSON at byte %td: %s", ps->p - ps->start, what);
}

static void ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static void put_utf8(char **o, unsigned cp)
{
	char *q = *o;
	if (cp < 0x80) {
		*q++ = cp;
	} else if (cp < 0x800) {
		*q++ = 0xc0 | cp >> 6;
		*q++ = 0x80 | (cp & 0x3f);
	} else if (cp < 0x10000) {
		*q++ = 0xe0 | cp >> 12;
		*q++ = 0x80 | (cp >> 6 & 0x3f);
		*q++ = 0x80 | (cp & 0x3f);
	} else {
		*q++ = 0xf0 | cp >> 18;
		*q++ = 0x80 | (cp >> 12 & 0x3f);
		*q++ = 0x80 | (cp >> 6 & 0x3f);
		*q++ = 0x80 | (cp & 0x3f);
	}
	*o = q;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= c - '0';
		else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
		else return -1;
	}
	*out = v;
	return 0;
}

/* Strings decode in place into the arena; escapes never make a string longer. */
static int pstring(struct parser *ps, const char **out)
{
	const char *start = ++ps->p;
	while (ps->p < ps->end && *ps->p != '"') {
		if (*ps->p == '\\')
			ps->p++;
		ps->p++;
	}
	if (ps->p >= ps->end)
		return perr(ps, "unterminated string");
	char *o = arena_alloc(ps->doc, ps->p - start + 1), *r = o;
	for (const char *s = start; s < ps->p; s++) {
		if ((unsigned char)*s < 0x20)
			return perr(ps, "control character in string");
		if (*s != '\\') {
			*o++ = *s;
			continue;
		}
		switch (*++s) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (ps->p - s < 5 || hex4(s + 1, &cp) < 0)
				return perr(ps, "bad \\u escape");
			s += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && ps->p - s >= 7 && s[1] == '\\' && s[2] == 'u' &&
			    hex4(s + 3, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			}
			if (cp == 0)
				return perr(ps, "NUL in string");
			put_utf8(&o, cp);
			break;
		}
		default:
			return perr(ps, "bad escape");
		}
	}
	*o = 0;
	ps->p++;
	*out = r;
	return 0;
}

static int pvalue(struct parser *ps, struct jv *v);

static int pcontainer(struct parser *ps, struct jv *v, char close)
{
	if (++ps->depth > 64)
		return perr(ps, "nesting too deep");
	ps->p++;
	struct jv **tail = &v->child;
	ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		struct jv *el = arena_alloc(ps->doc, sizeof *el);
		ws(ps);
		if (close == '}') {
			if (ps->p >= ps->end || *ps->p != '"')
				return perr(ps, "expected member name");
			int r = pstring(ps, &el->key);
			if (r < 0)
				return r;
			ws(ps);
			if (ps->p >= ps->end || *ps->p++ != ':')
				return perr(ps, "expected ':'");
		}
		int r = pvalue(ps, el);
		if (r < 0)
			return r;
		*tail = el;
		tail = &el->next;
		v->n++;
		ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			ps->depth--;
			return 0;
		}
		return perr(ps, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int pnumber(struct parser *ps, struct jv *v)
{
	const char *s = ps->p;
	bool integral = true;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
		return perr(ps, "unexpected character");
	while (ps->p < ps->end && strchr("0123456789+-.eE", *ps->p)) {
		if (strchr(".eE", *ps->p))
			integral = false;
		ps->p++;
	}
	char tmp[64];
	if (ps->p - s >= (ptrdiff_t)sizeof tmp)
		return perr(ps, "number too long");
	memcpy(tmp, s, ps->p - s);
	tmp[ps->p - s] = 0;
	char *e;
	v->type = J_NUM;
	v->d = strtod(tmp, &e);
	if (*e)
		return perr(ps, "bad number");
	if (integral) {
		errno = 0;
		v->i = strtoll(tmp, &e, 10);
		v->is_int = errno == 0 && !*e;
		if (!v->is_int && tmp[0] != '-') {
			/* uint64 values such as seccomp argument masks above INT64_MAX. */
			errno = 0;
			unsigned long long u = strtoull(tmp, &e, 10);
			if (errno == 0 && !*e) {
				v->i = (int64_t)u;
				v->is_int = true;
			}
		}
	}
	return 0;
}

static int pvalue(struct parser *ps, struct jv *v)
{
	ws(ps);
	if (ps->p >= ps->end)
		return perr(ps, "unexpected end");
	switch (*ps->p) {
	case '{': v->type = J_OBJ; return pcontainer(ps, v, '}');
	case '[': v->type = J_ARR; return pcontainer(ps, v, ']');
	case '"': v->type = J_STR; return pstring(ps, &v->s);
	}
	static const struct { const char *w; enum jtype t; bool b; } lit[] = {
		{"true", J_BOOL, true}, {"false", J_BOOL, false}, {"null", J_NULL, false}};
	for (size_t k = 0; k < 3; k++) {
		size_t l = strlen(lit[k].w);
		if ((size_t)(ps->end - ps->p) >= l && !memcmp(ps->p, lit[k].w, l)) {
			v->type = lit[k].t;
			v->b = lit[k].b;
			ps->p += l;
			return 0;
		}
	}
	return pnumber(ps, v);
}

int json_parse(struct jdoc *doc, const char *text, size_t len)
{
	struct parser ps = {doc, text, text, text + len, 0};
	doc->root = arena_alloc(doc, sizeof *doc->root);
	int r = pvalue(&ps, doc->root);
	if (r < 0)
		return r;
	ws(&ps);
	if (ps.p != ps.end)
		return fail(0, "invalid JSON: trailing data at byte %td", ps.p - text);
	return 0;
}

struct jv *jget(const struct jv *obj, const char *key)
{
	if (!obj || obj->type != J_OBJ)
		return NULL;
	JFOR(m, obj)
		if (!strcmp(m->key, key))
			return m->type == J_NULL ? NULL : m;
	return NULL;
}

static const char *tname[] = {"null", "boolean", "number", "string", "array", "object"};

int jtyped(const struct jv *obj, const char *key, enum jtype t, struct jv **out)
{
	struct jv *v = jget(obj, key);
	if (!v)
		return 0;
	if (v->type != t)
		return fail(0, "`%s` must be a %s, not a %s", key, tname[t], tname[v->type]);
	*out = v;
	return 0;
}

int jstr(const struct jv *obj, const char *key, const char **out)
{
	struct jv *v = NULL;
	int r = jtyped(obj, key, J_STR, &v);
	if (r == 0 && v)
		*out = v->s;
	return r;
}

int jbool(const struct jv *obj, const char *key, bool *out)
{
	struct jv *v = NULL;
	int r = jtyped(obj, key, J_BOOL, &v);
	if (r == 0 && v)
		*out = v->b;
	return r;
}

int jint(const struct jv *obj, const char *key, int64_t min, int64_t max, int64_t *out, bool *present)
{
	struct jv *v = NULL;
	int r = jtyped(obj, key, J_NUM, &v);
	if (r < 0 || !v)
		return r;
	if (!v->is_int || v->i < min || v->i > max)
		return fail(0, "`%s` must be an integer in [%lld, %lld]", key, (long long)min, (long long)max);
	*out = v->i;
	if (present)
		*present = true;
	return 0;
}
