# Console-socket receiver for the tests: accepts N connections on a unix socket, takes the pty
# master each sends (SCM_RIGHTS), and prints everything read from the masters.
import array, os, select, socket, sys

path, count = sys.argv[1], int(sys.argv[2])
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(count)
masters = []
for _ in range(count):
    conn, _ = srv.accept()
    fds = array.array('i')
    msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    masters.extend(fds)
    conn.close()
    # Collect a little of the first pty while waiting for the next connection.
out = b''
deadline = 100
while masters and deadline:
    r, _, _ = select.select(masters, [], [], 0.1)
    if not r:
        deadline -= 1
        if b'exec-' in out and b'30 100' in out:
            break
        continue
    for m in r:
        try:
            data = os.read(m, 4096)
        except OSError:
            data = b''
        if not data:
            masters.remove(m)
        out += data
sys.stdout.write(out.decode(errors='replace'))
