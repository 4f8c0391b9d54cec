// Real busybox bundles and a berth-runtime wrapper for the runtime integration tests. Each test
// file makes one Harness: its own --root, temp dir and cgroup prefix, so files can run in
// parallel; cleanup() deletes what the file created and fails if anything was left behind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const RUNTIME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/berth-runtime');
const BUSYBOX = '/bin/busybox';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const CG_ROOT = '/sys/fs/cgroup';

export function cgroupDirs(cgPath: string): string[] {
  return fs
    .readdirSync(CG_ROOT)
    .map((h) => path.join(CG_ROOT, h))
    .filter((h) => !fs.lstatSync(h).isSymbolicLink())
    .map((h) => path.join(h, cgPath))
    .filter((d) => fs.existsSync(d));
}

/** Processes whose command line mentions `needle` (our container ids are unique strings). */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) pids.push(Number(p));
    } catch {
      // gone already
    }
  }
  return pids;
}

export function mountsMentioning(needle: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(needle));
}

export function baseConfig(): Json {
  return {
    ociVersion: '1.1.0',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/bin/true'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
      cwd: '/',
      capabilities: {
        bounding: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        effective: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'berth',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys'],
    },
  };
}

export class Harness {
  readonly dir: string;
  readonly root: string;
  private n = 0;
  private readonly tag: string;
  private readonly ids = new Set<string>();
  private readonly cgroups = new Set<string>();

  constructor(name: string) {
    this.tag = `brt-${name}-${process.pid}-${Date.now().toString(36)}`;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-rt-${name}-`));
    // A container root in a user namespace maps to an unprivileged host uid: it must be able to
    // reach the bundle.
    fs.chmodSync(this.dir, 0o755);
    this.root = path.join(this.dir, 'state');
  }

  /** A fresh container id, also used as its cgroup path. */
  id(): string {
    const id = `${this.tag}-${++this.n}`;
    this.ids.add(id);
    this.cgroups.add(`/${id}`);
    return id;
  }

  /** A bundle with a busybox rootfs; `edit` adjusts the config (cgroupsPath is set to /<id>). */
  bundle(id: string, edit: (c: Json) => void = () => {}): string {
    const b = path.join(this.dir, `bundle-${id}`);
    const bin = path.join(b, 'rootfs/bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.chmodSync(b, 0o755);
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc', 'root', 'home/user']) fs.mkdirSync(path.join(b, 'rootfs', d), { recursive: true });
    fs.chmodSync(path.join(b, 'rootfs/tmp'), 0o1777);
    fs.copyFileSync(BUSYBOX, path.join(bin, 'busybox'));
    fs.chmodSync(path.join(bin, 'busybox'), 0o755);
    const applets = spawnSync(BUSYBOX, ['--list']).stdout.toString().split('\n').filter((a) => a && a !== 'busybox');
    for (const a of applets) fs.symlinkSync('busybox', path.join(bin, a));
    fs.writeFileSync(path.join(b, 'rootfs/etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n');
    fs.writeFileSync(path.join(b, 'rootfs/etc/group'), 'root:x:0:\nuser:x:1000:\n');
    const c = baseConfig();
    c.linux.cgroupsPath = `/${id}`;
    edit(c);
    this.writeConfig(b, c);
    return b;
  }

  writeConfig(bundle: string, c: Json): void {
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(c, null, 1));
  }

  /** Runs berth-runtime. Output goes through files, not pipes: a detached container keeps the
   * runtime's stdio open, so a pipe would not reach EOF until the container exits. */
  rt(args: string[], opts: SpawnSyncOptions = {}): Result {
    const out = path.join(this.dir, `out-${process.pid}`);
    const err = path.join(this.dir, `err-${process.pid}`);
    const fo = fs.openSync(out, 'w');
    const fe = fs.openSync(err, 'w');
    try {
      const r = spawnSync(RUNTIME, ['--root', this.root, ...args], { timeout: 60_000, stdio: ['ignore', fo, fe], ...opts });
      return { code: r.status ?? -1, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
    } finally {
      fs.closeSync(fo);
      fs.closeSync(fe);
    }
  }

  /** `run` in the foreground with the given process args; returns the container's output. */
  run(argv: string[], edit: (c: Json) => void = () => {}): Result & { id: string } {
    const id = this.id();
    const b = this.bundle(id, (c) => {
      c.process.args = argv;
      edit(c);
    });
    return { ...this.rt(['run', '--bundle', b, id]), id };
  }

  sh(script: string, edit: (c: Json) => void = () => {}): Result & { id: string } {
    return this.run(['/bin/sh', '-c', script], edit);
  }

  state(id: string): Json {
    const r = this.rt(['state', id]);
    if (r.code !== 0) throw new Error(`state ${id}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Json;
  }

  /** Everything a container with this id may have left: state dir, cgroups, mounts, processes. */
  leftovers(id: string): string[] {
    const left: string[] = [];
    if (fs.existsSync(path.join(this.root, id))) left.push(`state dir of ${id}`);
    left.push(...cgroupDirs(`/${id}`).map((d) => `cgroup ${d}`));
    left.push(...mountsMentioning(`bundle-${id}/`).map((m) => `mount ${m}`));
    left.push(...processesMentioning(id).map((p) => `process ${p}`));
    return left;
  }

  cleanup(): string[] {
    const left: string[] = [];
    for (const id of this.ids) {
      if (fs.existsSync(path.join(this.root, id))) this.rt(['delete', '--force', id]);
      left.push(...this.leftovers(id));
    }
    for (const cg of this.cgroups) for (const d of cgroupDirs(cg)) fs.rmdirSync(d);
    fs.rmSync(this.dir, { recursive: true, force: true });
    return left;
  }
}

export function oneLine(s: string): boolean {
  return s.trim().length > 0 && s.trim().split('\n').length === 1;
}
