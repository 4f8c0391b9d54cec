#include "sync.h"

#include <sys/socket.h>

int sync_send(int fd, int type, int value, const char *text)
{
	struct sync_msg m = {type, value, ""};
	if (text)
		snprintf(m.text, sizeof m.text, "%s", text);
	size_t len = offsetof(struct sync_msg, text) + strlen(m.text) + 1;
	while (send(fd, &m, len, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return fail(errno, "sync send");
	return 0;
}

int sync_recv(int fd, struct sync_msg *m)
{
	ssize_t n;
	while ((n = recv(fd, m, sizeof *m, 0)) < 0)
		if (errno != EINTR)
			return fail(errno, "sync receive");
	if (n == 0)
		return fail(0, "container init exited before it was ready");
	if (n < (ssize_t)offsetof(struct sync_msg, text) + 1)
		return fail(0, "sync: short message");
	m->text[sizeof m->text - 1] = 0;
	if (m->type == SYNC_ERROR)
		return fail(0, "%s", m->text);
	return 0;
}

int sync_expect(int fd, int type)
{
	struct sync_msg m;
	int r = sync_recv(fd, &m);
	if (r < 0)
		return r;
	return m.type == type ? 0 : fail(0, "sync: unexpected message %d (wanted %d)", m.type, type);
}
