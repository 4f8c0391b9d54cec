import type { ImageConfig } from './image.js';

/**
 * The OCI runtime spec for a new container, built client-side as ctr does (containerd 1.6
 * oci.populateDefaultUnixSpec + WithDefaultUnixDevices + WithImageConfigArgs): the daemon only
 * stores it and hands it to the runtime.
 */

export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciProcess {
  terminal: boolean;
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: { bounding: string[]; effective: string[]; permitted: string[] };
  rlimits: Array<{ type: string; hard: number; soft: number }>;
  noNewPrivileges: boolean;
}

interface LinuxResources {
  devices: Array<{ allow: boolean; type?: string; major?: number; minor?: number; access: string }>;
  memory?: { limit: number };
  cpu?: { quota: number; period: number };
}

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: {
    resources: LinuxResources;
    cgroupsPath: string;
    namespaces: Array<{ type: string }>;
    devices: Array<{ path: string; type: string; major: number; minor: number; fileMode: number; uid: number; gid: number }>;
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

export interface SpecInput {
  id: string;
  namespace: string;
  config: ImageConfig;
  /** Replaces the image's Cmd (the Entrypoint stays), as with docker and ctr. */
  args: string[];
  /** KEY=VALUE entries added after the image's, so they win. */
  env: string[];
  user: OciUser;
  terminal: boolean;
  network: 'none' | 'host';
  binds: OciMount[];
  memoryBytes?: number;
  cpus?: number;
}

const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const DEFAULT_MOUNTS: OciMount[] = [
  { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
];

/** The character devices every container gets, and the cgroup rules that let it use them. */
const DEFAULT_DEVICES: Array<[path: string, major: number, minor: number]> = [
  ['/dev/null', 1, 3],
  ['/dev/random', 1, 8],
  ['/dev/full', 1, 7],
  ['/dev/tty', 5, 0],
  ['/dev/zero', 1, 5],
  ['/dev/urandom', 1, 9],
];

const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const CPU_PERIOD = 100_000;

/** Image Env first, then ours; a later KEY replaces an earlier one in place. */
export function mergeEnv(...lists: ReadonlyArray<readonly string[]>): string[] {
  const out = new Map<string, string>();
  for (const entry of lists.flat()) {
    const eq = entry.indexOf('=');
    out.set(eq < 0 ? entry : entry.slice(0, eq), entry);
  }
  return [...out.values()];
}

export function imageArgs(config: ImageConfig, args: readonly string[]): string[] {
  const entrypoint = config.config?.Entrypoint ?? [];
  const cmd = args.length ? args : (config.config?.Cmd ?? []);
  return [...entrypoint, ...cmd];
}

function resources(input: SpecInput): LinuxResources {
  const devices: LinuxResources['devices'] = [
    { allow: false, access: 'rwm' },
    ...DEFAULT_DEVICES.map(([, major, minor]) => ({ allow: true, type: 'c', major, minor, access: 'rwm' })),
    { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
    { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
  ];
  return {
    devices,
    ...(input.memoryBytes !== undefined ? { memory: { limit: input.memoryBytes } } : {}),
    ...(input.cpus !== undefined ? { cpu: { quota: Math.round(input.cpus * CPU_PERIOD), period: CPU_PERIOD } } : {}),
  };
}

/** --net host shares the host's network and name resolution, as ctr --net-host does. */
function hostNetworkMounts(): OciMount[] {
  return ['/etc/hosts', '/etc/resolv.conf'].map((file) => ({ destination: file, type: 'bind', source: file, options: ['rbind', 'ro'] }));
}

export function buildSpec(input: SpecInput): OciSpec {
  const namespaces = ['pid', 'ipc', 'uts', 'mount', ...(input.network === 'host' ? [] : ['network'])].map((type) => ({ type }));
  const env = mergeEnv([DEFAULT_PATH], input.config.config?.Env ?? [], input.terminal ? ['TERM=xterm'] : [], input.env);
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: input.terminal,
      user: input.user,
      args: imageArgs(input.config, input.args),
      env,
      cwd: input.config.config?.WorkingDir || '/',
      capabilities: { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs' },
    // Its own UTS namespace gets the container's name; the host network keeps the host's.
    ...(input.network === 'host' ? {} : { hostname: input.id.slice(0, 63) }),
    mounts: [...DEFAULT_MOUNTS, ...(input.network === 'host' ? hostNetworkMounts() : []), ...input.binds],
    linux: {
      resources: resources(input),
      cgroupsPath: `/${input.namespace}/${input.id}`,
      namespaces,
      devices: DEFAULT_DEVICES.map(([path, major, minor]) => ({ path, type: 'c', major, minor, fileMode: 0o666, uid: 0, gid: 0 })),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}
