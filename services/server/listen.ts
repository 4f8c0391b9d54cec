import net from 'node:net';

/** A net.Server listening on the unix socket file `path`; rejects with listen's error. */
export async function listenUnix(path: string, onSocket: (socket: net.Socket) => void): Promise<net.Server> {
  const listener = net.createServer(onSocket);
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(path, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  return listener;
}
