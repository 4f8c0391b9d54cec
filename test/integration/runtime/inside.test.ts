// What a process sees from inside a berth-runtime container, for each config feature.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Harness, RUNTIME, type Json } from './harness.js';

const h = new Harness('in');
afterAll(() => {
  expect(h.cleanup()).toEqual([]);
});

const status = (out: string, key: string): string => out.match(new RegExp(`^${key}:\\s*(.*)$`, 'm'))?.[1] ?? '';
const userns = (c: Json): void => {
  c.linux.namespaces.push({ type: 'user' });
  c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
};

describe('namespaces and identity', () => {
  it('user namespace: container root is an unprivileged host uid', () => {
    const r = h.sh('cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/f; stat -c %u /tmp/f; ls /dev; cat /dev/null', (c) => {
      userns(c);
      c.root.readonly = false;
    });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines.slice(0, 4)).toEqual(['0 100000 65536', '0 100000 65536', '0', '0']);
    // On the host the file belongs to the mapped uid.
    expect(r.code).toBe(0);
  });

  it('hostname, domainname, only lo in a new network namespace', () => {
    const r = h.sh('hostname; cat /proc/sys/kernel/domainname; ls /sys/class/net', (c) => {
      c.hostname = 'box1';
      c.domainname = 'example.org';
    });
    expect(r.stdout).toBe('box1\nexample.org\nlo\n');
  });

  it('personality LINUX32', () => {
    expect(h.sh('uname -m', (c) => (c.linux.personality = { domain: 'LINUX32' })).stdout).toBe('i686\n');
  });

  it('pid namespace: the process is pid 1', () => {
    expect(h.sh('echo $$').stdout).toBe('1\n');
  });

  it('joins a namespace given by path', () => {
    const a = h.id();
    expect(h.rt(['run', '-d', '--bundle', h.bundle(a, (c) => (c.process.args = ['/bin/sleep', '100'])), a]).code).toBe(0);
    const pid = h.state(a).pid as number;
    const r = h.sh('readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname', (c) => {
      c.linux.namespaces = c.linux.namespaces.map((n: Json) =>
        n.type === 'network' || n.type === 'uts' ? { type: n.type, path: `/proc/${pid}/ns/${n.type === 'network' ? 'net' : 'uts'}` } : n,
      );
      delete c.hostname;
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${fs.readlinkSync(`/proc/${pid}/ns/net`)}\n${fs.readlinkSync(`/proc/${pid}/ns/uts`)}\nberth\n`);
    expect(h.rt(['delete', '-f', a]).code).toBe(0);
  });

  it('process user, groups, umask, env, cwd', () => {
    const r = h.sh('id -u; id -g; id -G; umask; echo $GREETING; pwd', (c) => {
      c.process.user = { uid: 1000, gid: 1000, additionalGids: [10, 20], umask: 0o027 };
      c.process.env.push('GREETING=hi there');
      c.process.cwd = '/home/user';
    });
    expect(r.stdout).toBe('1000\n1000\n1000 10 20\n0027\nhi there\n/home/user\n');
  });

  it('creates a missing cwd inside the rootfs', () => {
    expect(h.sh('pwd', (c) => (c.process.cwd = '/new/dir')).stdout).toBe('/new/dir\n');
  });
});

describe('privileges', () => {
  it('capability sets, empty inheritable set, no_new_privs, oom_score_adj', () => {
    const r = h.sh('cat /proc/self/status; cat /proc/self/oom_score_adj', (c) => {
      c.process.capabilities = {
        bounding: ['CAP_KILL', 'CAP_CHOWN', 'CAP_NET_RAW'],
        effective: ['CAP_KILL', 'CAP_CHOWN'],
        permitted: ['CAP_KILL', 'CAP_CHOWN'],
        inheritable: [],
        ambient: [],
      };
      c.process.oomScoreAdj = 123;
    });
    // CHOWN=0, KILL=5, NET_RAW=13
    expect(status(r.stdout, 'CapBnd')).toBe((1 | (1 << 5) | (1 << 13)).toString(16).padStart(16, '0'));
    expect(status(r.stdout, 'CapEff')).toBe((1 | (1 << 5)).toString(16).padStart(16, '0'));
    expect(status(r.stdout, 'CapPrm')).toBe((1 | (1 << 5)).toString(16).padStart(16, '0'));
    expect(status(r.stdout, 'CapInh')).toBe('0000000000000000');
    expect(status(r.stdout, 'CapAmb')).toBe('0000000000000000');
    expect(status(r.stdout, 'NoNewPrivs')).toBe('1');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('123');
  });

  it('ambient capabilities when inheritable allows them; no_new_privs off', () => {
    const r = h.sh('cat /proc/self/status', (c) => {
      c.process.user = { uid: 1000, gid: 1000 };
      const caps = ['CAP_NET_BIND_SERVICE'];
      c.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps };
      c.process.noNewPrivileges = false;
    });
    expect(status(r.stdout, 'CapAmb')).toBe((1 << 10).toString(16).padStart(16, '0'));
    expect(status(r.stdout, 'CapEff')).toBe((1 << 10).toString(16).padStart(16, '0'));
    expect(status(r.stdout, 'NoNewPrivs')).toBe('0');
  });

  it('rlimits', () => {
    const r = h.sh('ulimit -n; ulimit -Hn; ulimit -u', (c) => {
      c.process.rlimits = [
        { type: 'RLIMIT_NOFILE', soft: 512, hard: 700 },
        { type: 'RLIMIT_NPROC', soft: 77, hard: 77 },
      ];
    });
    expect(r.stdout).toBe('512\n700\n77\n');
  });

  it('seccomp: errno action, argument filters, the default profile of `spec`', () => {
    const r = h.sh('grep Seccomp: /proc/self/status; mkdir /tmp/a && echo mkdir-ok; chmod 0777 /tmp && echo 777-ok; chmod 0755 /tmp && echo 755-ok', (c) => {
      c.root.readonly = false;
      c.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
        flags: ['SECCOMP_FILTER_FLAG_LOG'],
        syscalls: [
          { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
          { names: ['chmod', 'fchmodat'], action: 'SCMP_ACT_ERRNO', args: [{ index: 2, value: 0o777, op: 'SCMP_CMP_EQ' }] },
          { names: ['chmod'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0o777, op: 'SCMP_CMP_EQ' }] },
        ],
      };
    });
    expect(r.stdout).toMatch(/^Seccomp:\s+2$/m);
    expect(r.stdout).not.toMatch(/mkdir-ok|777-ok/);
    expect(r.stdout).toMatch(/755-ok/);
    expect(r.stderr).toMatch(/Permission denied/);

    // `spec` writes a config whose profile denies, e.g., unshare and mount.
    const sb = path.join(h.dir, 'specbundle');
    fs.mkdirSync(sb);
    expect(h.rt(['spec', '--bundle', sb]).code).toBe(0);
    const prof = JSON.parse(fs.readFileSync(path.join(sb, 'config.json'), 'utf8')).linux.seccomp as Json;
    const d = h.sh('unshare -U true && echo unshare-ok; echo done', (c) => {
      c.linux.seccomp = prof;
    });
    expect(d.stdout).toBe('done\n');
  });

  it('seccomp kill, trap and log actions, and a default errno action with an allow list', () => {
    // `env` makes each command its own process (busybox runs some applets inside the shell).
    const r = h.sh('env sync; echo "sync=$?"; env hostname other; echo "hostname=$?"; echo done', (c) => {
      c.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['sync'], action: 'SCMP_ACT_KILL_PROCESS' },
          { names: ['sethostname'], action: 'SCMP_ACT_TRAP' },
          { names: ['getpid'], action: 'SCMP_ACT_LOG' },
        ],
      };
    });
    // 159 = 128 + SIGSYS
    expect(r.stdout).toBe('sync=159\nhostname=159\ndone\n');
    const e = h.run(['/bin/busybox', 'true'], (c) => {
      c.linux.seccomp = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, syscalls: [{ names: ['execve', 'exit_group', 'brk', 'arch_prctl', 'set_tid_address', 'mmap', 'munmap'], action: 'SCMP_ACT_ALLOW' }] };
      c.process.args = ['/bin/busybox', 'true'];
    });
    // Everything the runtime itself still does after loading the filter must be allowed, so a
    // profile this tight fails create with a clear error rather than a hang.
    expect(e.code).not.toBe(0);
    expect(e.stderr.trim().split('\n')).toHaveLength(1);
    expect(h.leftovers(e.id)).toEqual([]);
  });

  it('seccomp notify: the agent at listenerPath gets the notify fd and the process state', async () => {
    const id = h.id();
    const sock = path.join(h.dir, `${id}.agent`);
    const out = path.join(h.dir, `${id}.state`);
    const agent = spawn('python3', [path.join(path.dirname(new URL(import.meta.url).pathname), 'seccomp_agent.py'), sock, out]);
    let fds = '';
    agent.stdout.on('data', (d: Buffer) => (fds += d.toString()));
    const done = new Promise<number>((res) => agent.on('exit', (c) => res(c ?? -1)));
    for (let i = 0; i < 500 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 10));
    const b = h.bundle(id, (c) => {
      c.root.readonly = false;
      c.process.args = ['/bin/sh', '-c', 'mkdir /tmp/notified; echo "rc=$?"'];
      c.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        listenerPath: sock,
        listenerMetadata: 'meta-1',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
      };
    });
    const r = h.rt(['run', '--bundle', b, id]);
    expect(await done).toBe(0);
    expect(fds.trim()).toBe('1');
    expect(r.stderr).toMatch(/Function not implemented/);
    expect(r.stdout).toBe('rc=1\n');
    const st = JSON.parse(fs.readFileSync(out, 'utf8')) as Json;
    expect(st).toMatchObject({ ociVersion: '1.1.0', fds: ['seccompFd'], metadata: 'meta-1', state: { id, status: 'creating', bundle: b } });
    expect(st.pid).toBeGreaterThan(1);
    expect(st.state.pid).toBe(st.pid);
  });

  it('closes every fd but 0-2 and the preserved ones', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => (c.process.args = ['/bin/sh', '-c', 'cd /proc/self/fd && echo *']));
    const fds = [0, 1, 2, 3, 4].map(() => fs.openSync('/dev/null', 'r'));
    try {
      const out = path.join(h.dir, `${id}.out`);
      const fo = fs.openSync(out, 'w');
      // Hand the runtime two extra fds (3 and 4); it may keep only --preserve-fds of them.
      const r = h.rt(['run', '--preserve-fds', '1', '--bundle', b, id], { stdio: ['ignore', fo, 'pipe', fds[3]!, fds[4]!] });
      fs.closeSync(fo);
      expect(r.code).toBe(0);
      // The shell's own directory fd for the glob is 3 or 4.
      const seen = fs.readFileSync(out, 'utf8').trim().split(' ').map(Number);
      expect(seen.slice(0, 4)).toEqual([0, 1, 2, 3]);
      expect(seen.length).toBeLessThanOrEqual(5);
      expect(seen.filter((n) => n > 4)).toEqual([]);
    } finally {
      for (const f of fds) fs.closeSync(f);
    }
  });
});

describe('filesystem', () => {
  it('read-only root, masked and read-only paths, mount flags', () => {
    const r = h.sh(
      [
        'touch /x 2>/dev/null && echo root-rw',
        'stat -c "%t:%T" /proc/keys',
        'ls /proc/acpi | wc -l',
        'echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo sys-rw',
        'awk \'$5 == "/" { print $6 }\' /proc/self/mountinfo',
        'awk \'$5 == "/data" { print $6 }\' /proc/self/mountinfo',
        'touch /data/y 2>/dev/null && echo data-rw',
        'cat /data/hello',
      ].join('; '),
      (c) => {
        const src = path.join(h.dir, 'data');
        fs.mkdirSync(src, { recursive: true });
        fs.writeFileSync(path.join(src, 'hello'), 'from-host\n');
        c.mounts.push({ destination: '/data', type: 'bind', source: src, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
      },
    );
    const lines = r.stdout.trim().split('\n');
    expect(r.stdout).not.toMatch(/root-rw|sys-rw|data-rw/);
    expect(lines[0]).toBe('1:3');
    expect(lines[1]).toBe('0');
    expect(lines[2]).toMatch(/^ro,/);
    expect(lines[3]).toMatch(/^ro,nosuid,nodev,noexec/);
    expect(lines[4]).toBe('from-host');
  });

  it('default devices, /dev symlinks and config devices', () => {
    const r = h.sh('ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/mynull | awk \'{print $1, $5, $6, $NF}\'; readlink /dev/fd; readlink /dev/ptmx; readlink /dev/stdin; echo x > /dev/mynull && echo write-ok', (c) => {
      c.linux.devices = [{ path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o620, uid: 0, gid: 0 }];
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        'crw-rw-rw- 1, 7 /dev/full',
        'crw--w---- 1, 3 /dev/mynull',
        'crw-rw-rw- 1, 3 /dev/null',
        'crw-rw-rw- 1, 8 /dev/random',
        'crw-rw-rw- 5, 0 /dev/tty',
        'crw-rw-rw- 1, 9 /dev/urandom',
        'crw-rw-rw- 1, 5 /dev/zero',
        '/proc/self/fd',
        'pts/ptmx',
        '/proc/self/fd/0',
        'write-ok',
        '',
      ].join('\n'),
    );
  });

  it('devices are bind mounts inside a user namespace; sysfs and sysctl work there', () => {
    const r = h.sh('ls -l /dev/null | awk \'{print $1, $5, $6}\'; ls /sys/class/net; cat /proc/sys/net/ipv4/ip_forward', (c) => {
      userns(c);
      c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('crw-rw-rw- 1, 3\nlo\n1\n');
  });

  it('tmpfs options, mqueue, propagation flags', () => {
    const r = h.sh('grep -E " /(scratch|dev/mqueue) " /proc/self/mountinfo', (c) => {
      c.mounts.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=700', 'noexec', 'rprivate'] });
    });
    expect(r.stdout).toMatch(/ \/dev\/mqueue rw,nosuid,nodev,noexec/);
    expect(r.stdout).toMatch(/ \/scratch rw,noexec.* - tmpfs tmpfs rw,size=1024k,mode=700/);
  });
});

describe('cgroups', () => {
  it('writes the resource limits into the container cgroup files', () => {
    const r = h.sh(
      'cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes pids/pids.max cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpuset/cpuset.cpus memory/memory.memsw.limit_in_bytes memory/memory.swappiness; cat pids/cgroup.procs',
      (c) => {
        c.linux.resources = {
          ...c.linux.resources,
          memory: { limit: 64 * 1024 * 1024, reservation: 32 * 1024 * 1024, swap: 128 * 1024 * 1024, swappiness: 10 },
          pids: { limit: 50 },
          cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0' },
        };
      },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').slice(0, 9)).toEqual([
      String(64 * 1024 * 1024),
      String(32 * 1024 * 1024),
      '50',
      '512',
      '50000',
      '100000',
      '0',
      String(128 * 1024 * 1024),
      '10',
    ]);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1');
  });

  it('pids.max is enforced', () => {
    const r = h.sh('for i in 1 2 3 4 5 6; do sleep 5 & done 2>&1; echo done', (c) => {
      c.linux.resources = { ...c.linux.resources, pids: { limit: 3 } };
    });
    expect(r.stdout + r.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
  });

  it('cgroup2 hugetlb and unified keys on the hybrid layout', () => {
    const ctl = '/sys/fs/cgroup/unified/cgroup.controllers';
    if (!fs.existsSync(ctl) || !fs.readFileSync(ctl, 'utf8').includes('hugetlb')) return;
    const r = h.sh('cat /sys/fs/cgroup/unified/hugetlb.2MB.max /sys/fs/cgroup/unified/cgroup.max.descendants', (c) => {
      c.linux.resources = {
        ...c.linux.resources,
        hugepageLimits: [{ pageSize: '2MB', limit: 4 * 1024 * 1024 }],
        unified: { 'cgroup.max.descendants': '7' },
      };
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${4 * 1024 * 1024}\n7\n`);
  });

  it('a cgroup2-only view: CLONE_INTO_CGROUP, cgroup2 mount, device rules as an eBPF program', () => {
    // On the hybrid layout, a private mount namespace with the cgroup2 hierarchy bound over
    // /sys/fs/cgroup is what a pure cgroup2 host looks like to the runtime.
    if (!fs.existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) return;
    const id = h.id();
    const b = h.bundle(id, (c) => {
      c.root.readonly = false;
      for (const set of ['bounding', 'effective', 'permitted']) c.process.capabilities[set].push('CAP_MKNOD');
      c.process.args = [
        '/bin/sh',
        '-c',
        'cat /proc/self/cgroup | grep "^0::"; head -c 1 /dev/zero | wc -c; mknod /tmp/sda b 8 0 && echo sda-ok; mknod /tmp/n c 1 3 && echo null-ok; ls /sys/fs/cgroup/cgroup.procs',
      ];
    });
    const script = `mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec ${RUNTIME} --root ${h.root} run --bundle ${b} ${id}`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]);
    expect(r.stderr.toString()).toMatch(/mknod: \/tmp\/sda: Operation not permitted/);
    expect(r.stdout.toString()).toBe('0::/\n1\nnull-ok\n/sys/fs/cgroup/cgroup.procs\n');
    expect(r.status).toBe(0);
    expect(h.leftovers(id)).toEqual([]);
  });

  it('the devices cgroup denies what the config does not allow', () => {
    const r = h.sh('head -c 1 /dev/zero >/dev/null && echo zero-ok; mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda > /dev/null && echo sda-ok', (c) => {
      c.root.readonly = false;
      c.process.capabilities.bounding.push('CAP_MKNOD');
      c.process.capabilities.effective.push('CAP_MKNOD');
      c.process.capabilities.permitted.push('CAP_MKNOD');
    });
    expect(r.stdout).toBe('zero-ok\n');
  });
});
