import { execFileSync, spawnSync } from 'node:child_process';
import { constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage, messageType } from '../../../services/server/protos.js';
import { killProcessesUnder, waitPidGone } from '../../helpers/cleanup.js';
import { EventSink, Fifos, makeBundle, NAMESPACE, removeTestCgroups, runtimeOptionsAny, TaskClient } from './harness.js';

const GO_SHIM = '/usr/bin/containerd-shim-runc-v2';

/**
 * Our ttrpc client and Events server against containerd's own Go shim: the codec, envelope,
 * metadata and status handling must match github.com/containerd/ttrpc byte for byte.
 */
describe('ttrpc interop with containerd-shim-runc-v2', () => {
  let dir: string;
  let sink: EventSink;
  let client: TaskClient | undefined;
  let shimPid = 0;
  let logReader: net.Socket | undefined;
  /** The Go shim's socket lives in /run/containerd/s whatever its state dir; removed if left. */
  let goSocket = '';

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/berth-shim-interop-');
    sink = new EventSink(join(dir, 'events.sock'));
    await sink.start();
  });

  afterAll(async () => {
    client?.close();
    logReader?.destroy();
    await sink.stop();
    if (shimPid) {
      try {
        process.kill(shimPid, 'SIGKILL');
      } catch {
        // already exited after Shutdown
      }
    }
    await killProcessesUnder(dir);
    if (goSocket) rmSync(goSocket, { force: true });
    removeTestCgroups(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates, starts and waits for a task and receives its events', async () => {
    const id = 'gointerop';
    const bundle = makeBundle(dir, id, { args: ['sh', '-c', 'echo hi-from-go-shim; exit 2'] });
    // containerd reads the shim's log from this FIFO; the Go shim exits if it cannot open it.
    execFileSync('mkfifo', [join(bundle, 'log')]);
    logReader = new net.Socket({ fd: openSync(join(bundle, 'log'), constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
    logReader.resume();
    const options = encodeMessage(messageType('google.protobuf.Any'), runtimeOptionsAny('/usr/sbin/runc'));
    const started = spawnSync(GO_SHIM, ['-namespace', NAMESPACE, '-address', join(dir, 'containerd.sock'), '-publish-binary', '/bin/true', '-id', id, 'start'], {
      cwd: bundle,
      input: options,
      env: { ...process.env, TTRPC_ADDRESS: sink.socket },
    });
    expect(started.status, started.stderr.toString()).toBe(0);
    const address = started.stdout.toString().trim();
    goSocket = address.replace(/^unix:\/\//, '');
    client = await TaskClient.connect(address);
    const fifos = new Fifos(join(dir, 'fifo'), id);
    const created = await client.call('Create', { id, bundle, stdout: fifos.stdout, stderr: fifos.stderr });
    const waited = client.call('Wait', { id });
    await client.call('Start', { id });
    expect((await waited).exit_status).toBe(2);
    await fifos.stdoutEnded;
    expect(fifos.output('stdout')).toBe('hi-from-go-shim\n');
    const exit = await sink.waitFor((e) => e.topic === '/tasks/exit');
    expect(exit.event).toMatchObject({ container_id: id, pid: created.pid, exit_status: 2 });
    expect(exit.namespace).toBe(NAMESPACE);
    // An error status from Go's ttrpc server decodes to the same code.
    await expect(client.call('State', { id: 'missing' })).rejects.toMatchObject({ grpcCode: 5 });
    expect(await client.call('Delete', { id })).toMatchObject({ exit_status: 2 });
    shimPid = Number((await client.call('Connect', { id })).shim_pid);
    await client.call('Shutdown', { id }).catch(() => undefined);
    expect(await waitPidGone(shimPid, 30_000)).toBe(true);
  });
});
