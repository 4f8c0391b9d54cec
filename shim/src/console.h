/* Terminal processes: the runtime hands the pty master over a --console-socket (SCM_RIGHTS), and
 * a thread per terminal copies the client's stdin FIFO into the master and the master into the
 * client's stdout FIFO. Writes on either side are non-blocking, so a container that stops reading
 * its terminal, or a client that stops reading its FIFO, stalls only its own terminal. */
#pragma once
#include <stdbool.h>
#include "fifo_io.h"

/* A unix socket in console_dir() (a short random name: sun_path is 108 bytes). */
struct console_socket {
	char *path;
	int fd;
};

int console_socket_open(struct console_socket *s);
/* The pty master the runtime sent (O_CLOEXEC), waiting at most `timeout_ms` for it: -ETIMEDOUT
 * with "timed out waiting for console master". */
int console_socket_receive(struct console_socket *s, int timeout_ms);
/* Closes and removes the socket. */
void console_socket_close(struct console_socket *s);

struct console_io;

/* Starts copying between `master` (owned from now on, also on failure) and the FIFOs of `paths`
 * (stdin, stdout; stderr is the terminal's too). 0 or -errno. */
int console_io_start(int master, const struct stdio_paths *paths, struct console_io **out);
/* TIOCSWINSZ on the master. 0 or -errno. */
int console_io_resize(struct console_io *c, unsigned width, unsigned height);
/* CloseIO: drops the shim's own writer of the stdin FIFO, so the copy ends at the client's EOF. */
void console_io_close_stdin(struct console_io *c);
/* Ends the copying and gives up the caller's handle: at once, or (`when_drained`, the process
 * has exited) once the pty has no writer left and what it printed is in the stdout FIFO. */
void console_io_close(struct console_io *c, bool when_drained);
