#include "fifo_io.h"

#include "util.h"

#include <fcntl.h>

/* Without O_NONBLOCK, opening a FIFO waits for its peer. */
int fifo_open(const char *path, int flags, int *fd)
{
	*fd = open(path, flags | O_NONBLOCK | O_CLOEXEC);
	return *fd < 0 ? fail(errno, "open `%s`", path) : 0;
}

/* The container expects ordinary blocking reads and writes on what it inherits. */
static int set_blocking(int fd, const char *path)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		return fail(errno, "make `%s` blocking", path);
	return 0;
}

static int open_null(int flags, int *fd)
{
	*fd = open("/dev/null", flags | O_CLOEXEC);
	return *fd < 0 ? fail(errno, "open /dev/null") : 0;
}

static int open_stdin(struct fifo_io *io, const char *path)
{
	if (!path || !*path)
		return open_null(O_RDONLY, &io->runtime[0]);
	int r = fifo_open(path, O_RDONLY, &io->runtime[0]);
	if (r == 0)
		r = fifo_open(path, O_WRONLY, &io->stdin_keeper);
	return r < 0 ? r : set_blocking(io->runtime[0], path);
}

static int open_output(struct fifo_io *io, int i, const char *path)
{
	if (!path || !*path)
		return open_null(O_WRONLY, &io->runtime[i]);
	int r = fifo_open(path, O_RDONLY, &io->guards[i - 1]);
	if (r == 0)
		r = fifo_open(path, O_WRONLY, &io->runtime[i]);
	return r < 0 ? r : set_blocking(io->runtime[i], path);
}

int fifo_io_open(struct fifo_io *io, const struct stdio_paths *paths)
{
	*io = (struct fifo_io){ .runtime = { -1, -1, -1 }, .stdin_keeper = -1, .guards = { -1, -1 } };
	int r = open_stdin(io, paths->in);
	if (r == 0)
		r = open_output(io, 1, paths->out);
	if (r == 0)
		r = open_output(io, 2, paths->err);
	if (r < 0)
		fifo_io_close(io);
	return r;
}

void fifo_io_release(struct fifo_io *io)
{
	for (int i = 0; i < 3; i++)
		close_owned(&io->runtime[i]);
}

void fifo_io_close_stdin(struct fifo_io *io)
{
	close_owned(&io->stdin_keeper);
}

void fifo_io_close(struct fifo_io *io)
{
	fifo_io_release(io);
	fifo_io_close_stdin(io);
	close_owned(&io->guards[0]);
	close_owned(&io->guards[1]);
}
