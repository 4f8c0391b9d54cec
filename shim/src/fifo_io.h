/* The client's stdio FIFOs wired straight into a non-terminal process: the runtime passes its
 * stdio to the container, so the container writes the FIFOs itself and no byte goes through the
 * shim. The shim keeps, per FIFO, the end that makes it safe:
 *  - stdin: a write end, so the container does not read EOF before the client has connected;
 *    dropped on CloseIO (then EOF arrives when the client closes too) and at exit.
 *  - stdout/stderr: a read end, so opening for writing never fails with ENXIO and a vanished
 *    reader never makes the container's writes fail with EPIPE (containerd's shim does the same).
 * The write ends are owned by the container only, so the client sees EOF exactly when the last
 * process holding them has exited: the "close when exited and drained" rule holds by construction.
 * (Named fifo_io, not stdio, so that it cannot shadow <stdio.h> on the include path.)
 *
 * Not locked: the owner serialises calls. */
#pragma once

struct stdio_paths {
	const char *in, *out, *err; /* "" or NULL: /dev/null */
};

struct fifo_io {
	int runtime[3];   /* for the runtime's stdin/stdout/stderr, closed by fifo_io_release */
	int stdin_keeper;
	int guards[2];
};

/* Every fd is O_CLOEXEC: the runtime gets its three through dup2. 0 or -errno, nothing left open. */
int fifo_io_open(struct fifo_io *io, const struct stdio_paths *paths);
/* The shim's copies of the runtime's ends, once the runtime has run. */
void fifo_io_release(struct fifo_io *io);
void fifo_io_close_stdin(struct fifo_io *io);
void fifo_io_close(struct fifo_io *io);
/* One end of the FIFO at `path`, O_NONBLOCK | O_CLOEXEC, without waiting for the other: 0 or -errno. */
int fifo_open(const char *path, int flags, int *fd);
