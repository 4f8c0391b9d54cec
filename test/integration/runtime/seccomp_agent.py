# A minimal seccomp agent for the tests: accepts one connection on a unix socket, takes the
# notify fd and the containerProcessState, writes the state to a file, and closes the fd, so
# the notified syscalls then fail with ENOSYS.
import array, socket, sys

path, out = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
conn, _ = srv.accept()
fds = array.array('i')
msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize))
for level, typ, data in anc:
    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
with open(out, 'wb') as f:
    f.write(msg)
print(len(fds))
