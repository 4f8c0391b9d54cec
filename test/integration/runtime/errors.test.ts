// Bad configs fail with one clear line, a non-zero exit and nothing left behind; and the runtime
// CVE classes (runc's) do not reproduce.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Harness, RUNTIME, type Json, oneLine } from './harness.js';

const h = new Harness('err');
afterAll(() => {
  expect(h.cleanup()).toEqual([]);
});

function createFails(edit: (c: Json, bundle: string) => void, reason: RegExp): void {
  const id = h.id();
  const b = h.bundle(id);
  const c = JSON.parse(fs.readFileSync(path.join(b, 'config.json'), 'utf8')) as Json;
  edit(c, b);
  h.writeConfig(b, c);
  const r = h.rt(['create', '--bundle', b, id]);
  expect(r.code).not.toBe(0);
  expect(oneLine(r.stderr)).toBe(true);
  expect(r.stderr).toMatch(reason);
  expect(h.leftovers(id)).toEqual([]);
}

describe('bad configs', () => {
  it('missing rootfs', () => createFails((c) => (c.root.path = 'no-such-rootfs'), /rootfs `.*no-such-rootfs`: No such file/));

  it('malformed JSON', () => {
    const id = h.id();
    const b = h.bundle(id);
    fs.writeFileSync(path.join(b, 'config.json'), '{"ociVersion": "1.1.0", "process": {');
    const r = h.rt(['create', '--bundle', b, id]);
    expect(r.code).not.toBe(0);
    expect(oneLine(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(/config.json.*invalid JSON at byte \d+/);
    expect(h.leftovers(id)).toEqual([]);
  });

  it('wrong field types', () => createFails((c) => (c.process.user.uid = 'root'), /`uid` must be a number/));

  it('unknown namespace type and path', () => {
    createFails((c) => c.linux.namespaces.push({ type: 'bogus' }), /unknown namespace type `bogus`/);
    createFails(
      (c) => (c.linux.namespaces = c.linux.namespaces.map((n: Json) => (n.type === 'network' ? { type: 'network', path: '/proc/999999999/ns/net' } : n))),
      /open network namespace `\/proc\/999999999\/ns\/net`: No such file/,
    );
  });

  it('invalid uid mapping', () => {
    createFails((c) => {
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [
        { containerID: 0, hostID: 100000, size: 1000 },
        { containerID: 500, hostID: 300000, size: 1000 },
      ];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    }, /invalid uid mapping/);
    createFails((c) => {
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 0 }];
    }, /uidMappings/);
  });

  it('cwd outside the rootfs, including /proc/self/fd/N (CVE-2024-21626)', () => {
    createFails((c) => (c.process.cwd = 'relative/dir'), /process.cwd must be an absolute path/);
    for (let n = 3; n <= 8; n++) createFails((c) => (c.process.cwd = `/proc/self/fd/${n}`), /process.cwd/);
  });

  it('a cwd symlink pointing out of the rootfs stays inside it', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => {
      c.process.args = ['/bin/sh', '-c', 'pwd; ls'];
      c.process.cwd = '/escape';
    });
    fs.symlinkSync('/../../../../../../../../etc', path.join(b, 'rootfs/escape'));
    const o = h.rt(['run', '--bundle', b, id]);
    expect(o.code).toBe(0);
    // The rootfs's own /etc (passwd, group), not the host's.
    expect(o.stdout.split('\n').slice(1).filter(Boolean).sort()).toEqual(['group', 'passwd']);
  });

  it('duplicate and invalid ids', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => (c.process.args = ['/bin/sleep', '100']));
    expect(h.rt(['create', '--bundle', b, id]).code).toBe(0);
    const again = h.rt(['create', '--bundle', b, id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists/);
    expect(h.state(id).status).toBe('created');
    expect(h.rt(['delete', id]).code).toBe(0);
    const bad = h.rt(['create', '--bundle', b, '../escape']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid container id/);
  });

  it('a terminal without --console-socket, an AppArmor profile without AppArmor', () => {
    createFails((c) => (c.process.terminal = true), /--console-socket/);
    if (!fs.existsSync('/sys/kernel/security/apparmor')) createFails((c) => (c.process.apparmorProfile = 'berth-test'), /AppArmor is not enabled/);
  });

  it('logs the error as JSON with --log-format json', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => (c.root.path = 'missing'));
    const log = path.join(h.dir, 'log.json');
    const r = h.rt(['--log', log, '--log-format', 'json', 'create', '--bundle', b, id]);
    expect(r.code).not.toBe(0);
    const entries = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Json);
    expect(entries.at(-1)).toMatchObject({ level: 'error', msg: expect.stringMatching(/rootfs/) });
    expect(r.stderr.trim()).toContain(entries.at(-1)!.msg);
  });
});

describe('runtime CVE classes', () => {
  it('CVE-2019-5736: the init runs from a sealed copy, the host binary cannot be written', () => {
    const before = crypto.createHash('sha256').update(fs.readFileSync(RUNTIME)).digest('hex');
    const id = h.id();
    expect(h.rt(['create', '--bundle', h.bundle(id), id]).code).toBe(0);
    const pid = h.state(id).pid as number;
    expect(fs.readlinkSync(`/proc/${pid}/exe`)).toMatch(/^\/memfd:berth-runtime/);
    let wrote = false;
    try {
      const fd = fs.openSync(`/proc/${pid}/exe`, 'r+');
      try {
        fs.writeSync(fd, 'x', 0);
        wrote = true;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // EPERM / ETXTBSY: what we want
    }
    expect(wrote).toBe(false);
    // From inside: a process exec'd into the created container attacks its pid 1, which is still
    // the runtime waiting for `start`.
    const inside = h.rt(['exec', id, '/bin/sh', '-c', 'readlink /proc/1/exe; echo pwned > /proc/1/exe && echo WROTE; echo done']);
    expect(inside.stdout).toMatch(/^\/memfd:berth-runtime/);
    expect(inside.stdout).not.toMatch(/WROTE/);
    expect(inside.stdout).toMatch(/done/);
    expect(h.rt(['delete', id]).code).toBe(0);
    expect(crypto.createHash('sha256').update(fs.readFileSync(RUNTIME)).digest('hex')).toBe(before);
  });

  it('CVE-2025-31133: a /dev/null symlinked to a procfs file is refused for masking', () => {
    const corePattern = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    createFails((c, b) => {
      c.mounts = c.mounts.filter((m: Json) => !String(m.destination).startsWith('/dev'));
      fs.symlinkSync('/proc/sys/kernel/core_pattern', path.join(b, 'rootfs/dev/null'));
      c.linux.maskedPaths = ['/proc/keys'];
      c.linux.readonlyPaths = [];
    }, /not the null device/);
    expect(fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).toBe(corePattern);
  });

  it('CVE-2021-30465 class: a mount destination through a symlink stays inside the rootfs', () => {
    const sentinel = path.join(h.dir, 'host-sentinel');
    fs.mkdirSync(sentinel);
    const src = path.join(h.dir, 'vol');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'f'), 'vol\n');
    const id = h.id();
    const b = h.bundle(id, (c) => {
      c.process.args = ['/bin/cat', '/mnt/escape/sub/f'];
      c.mounts.push({ destination: '/mnt/escape/sub', type: 'bind', source: src, options: ['rbind', 'ro'] });
    });
    fs.mkdirSync(path.join(b, 'rootfs/mnt'));
    fs.symlinkSync(`/../../../../../../../..${sentinel}`, path.join(b, 'rootfs/mnt/escape'));
    const r = h.rt(['run', '--bundle', b, id]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('vol\n');
    expect(fs.readdirSync(sentinel)).toEqual([]);
    // The symlink resolved inside the rootfs instead.
    expect(fs.existsSync(path.join(b, 'rootfs', sentinel, 'sub'))).toBe(true);
  });
});
