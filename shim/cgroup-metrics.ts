import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packAny } from '../services/server/protos.js';

/**
 * A task's cgroup v1 statistics (this host's hybrid layout keeps the controllers on v1) as the
 * `io.containerd.cgroups.v1.Metrics` Any that `ctr task metrics` and CRI stats decode.
 */
const CGROUP_ROOT = '/sys/fs/cgroup';
/** cpuacct.stat counts USER_HZ ticks (100 per second on Linux); Metrics wants nanoseconds. */
const NS_PER_TICK = 10_000_000;

type Entries = Record<string, number>;

async function read(controller: string, path: string, file: string): Promise<string | undefined> {
  try {
    return await readFile(join(CGROUP_ROOT, controller, path, file), 'utf8');
  } catch {
    return undefined;
  }
}

async function num(controller: string, path: string, file: string): Promise<number> {
  const text = (await read(controller, path, file))?.trim();
  if (!text || text === 'max') return 0;
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
}

async function keyed(controller: string, path: string, file: string): Promise<Entries> {
  const out: Entries = {};
  for (const line of ((await read(controller, path, file)) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

async function memoryEntry(path: string, prefix: string): Promise<object> {
  return {
    limit: await num('memory', path, `${prefix}.limit_in_bytes`),
    usage: await num('memory', path, `${prefix}.usage_in_bytes`),
    max: await num('memory', path, `${prefix}.max_usage_in_bytes`),
    failcnt: await num('memory', path, `${prefix}.failcnt`),
  };
}

const MEMORY_STAT_FIELDS: Record<string, string> = {
  cache: 'cache', rss: 'rss', rss_huge: 'rss_huge', mapped_file: 'mapped_file', dirty: 'dirty', writeback: 'writeback',
  pgpgin: 'pg_pg_in', pgpgout: 'pg_pg_out', pgfault: 'pg_fault', pgmajfault: 'pg_maj_fault',
  inactive_anon: 'inactive_anon', active_anon: 'active_anon', inactive_file: 'inactive_file', active_file: 'active_file',
  unevictable: 'unevictable', hierarchical_memory_limit: 'hierarchical_memory_limit', hierarchical_memsw_limit: 'hierarchical_swap_limit',
};

async function memory(path: string): Promise<object> {
  const stat = await keyed('memory', path, 'memory.stat');
  const fields: Record<string, number> = {};
  for (const [file, field] of Object.entries(MEMORY_STAT_FIELDS)) {
    if (stat[file] !== undefined) fields[field] = stat[file];
    if (stat[`total_${file}`] !== undefined) fields[`total_${field}`] = stat[`total_${file}`] ?? 0;
  }
  return {
    ...fields,
    usage: await memoryEntry(path, 'memory'),
    swap: await memoryEntry(path, 'memory.memsw'),
    kernel: await memoryEntry(path, 'memory.kmem'),
    kernel_tcp: await memoryEntry(path, 'memory.kmem.tcp'),
  };
}

async function cpu(path: string): Promise<object> {
  const stat = await keyed('cpuacct', path, 'cpuacct.stat');
  const throttle = await keyed('cpu', path, 'cpu.stat');
  const perCpu = ((await read('cpuacct', path, 'cpuacct.usage_percpu')) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return {
    usage: {
      total: await num('cpuacct', path, 'cpuacct.usage'),
      kernel: (stat.system ?? 0) * NS_PER_TICK,
      user: (stat.user ?? 0) * NS_PER_TICK,
      per_cpu: perCpu,
    },
    throttling: { periods: throttle.nr_periods ?? 0, throttled_periods: throttle.nr_throttled ?? 0, throttled_time: throttle.throttled_time ?? 0 },
  };
}

/** Lines like "8:0 Read 4096" (op-less lines such as "Total 123" are skipped). */
async function blkioEntries(path: string, file: string): Promise<object[]> {
  const out: object[] = [];
  for (const line of ((await read('blkio', path, file)) ?? '').split('\n')) {
    const [dev, op, value] = line.trim().split(/\s+/);
    const [major, minor] = (dev ?? '').split(':').map(Number);
    if (op && value !== undefined && major !== undefined && minor !== undefined && !Number.isNaN(minor)) {
      out.push({ op, major, minor, value: Number(value) });
    }
  }
  return out;
}

export async function cgroupV1Metrics(cgroupsPath: string): Promise<{ type_url: string; value: Buffer }> {
  const path = cgroupsPath.replace(/^\/+/, '');
  const oom = await keyed('memory', path, 'memory.oom_control');
  return packAny('io.containerd.cgroups.v1.Metrics', {
    pids: { current: await num('pids', path, 'pids.current'), limit: await num('pids', path, 'pids.max') },
    cpu: await cpu(path),
    memory: await memory(path),
    blkio: {
      io_service_bytes_recursive: await blkioEntries(path, 'blkio.io_service_bytes_recursive'),
      io_serviced_recursive: await blkioEntries(path, 'blkio.io_serviced_recursive'),
    },
    memory_oom_control: { oom_kill_disable: oom.oom_kill_disable ?? 0, under_oom: oom.under_oom ?? 0, oom_kill: oom.oom_kill ?? 0 },
  });
}
