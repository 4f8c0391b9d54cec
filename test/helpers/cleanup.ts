import { readdir, readFile, readlink, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './exec.js';

/** True when `path` is `dir` itself or lies below it. */
function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `dir` in this process's mount namespace, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((f): f is string => f !== undefined)
    .map(unescapeMountPath)
    .filter((p) => isUnder(p, dir));
  return points.sort((a, b) => b.length - a.length);
}

/**
 * Lazily unmounts everything at or below `dir`, repeating for mounts stacked on one point.
 * Only ever touches paths under `dir`, so a test cannot unmount anything of the host.
 */
export async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) return;
    for (const p of points) await run('umount', ['-l', p], { timeoutMs: 10_000 });
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`still mounted under ${dir}: ${left.join(', ')}`);
}

/** The state letter from /proc/PID/stat, or undefined once the process is gone. */
async function procState(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces; the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/**
 * Waits until `pid` has exited. A zombie counts as exited: a process re-parented to PID 1 here
 * stays a zombie for a second or two, and `kill -0` would still succeed on it.
 */
export async function waitPidGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await procState(pid);
    if (state === undefined || state === 'Z' || state === 'X') return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}

interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string[];
  root: string;
}

async function readProc(pid: number): Promise<ProcInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return { pid, ppid, cmdline, root: await readlink(`/proc/${pid}/root`) };
  } catch {
    return undefined; // exited while we looked
  }
}

function namesDir(p: ProcInfo, dir: string): boolean {
  const argHit = p.cmdline.some((arg) => arg.includes(`${dir}/`) || arg.endsWith(dir));
  return argHit || (p.root !== '/' && isUnder(p.root, dir));
}

/**
 * PIDs of processes that belong to a daemon instance living in `dir`: those whose command line
 * names a path under it (berthd, shims, runtimes given --root/--state/--address) or whose root
 * is inside it, plus all their descendants. Descendants matter because a container that has
 * pivoted into its rootfs shows "/" as its root from here; it is found as a shim's child.
 */
export async function processesUnder(dir: string): Promise<number[]> {
  const pids = (await readdir('/proc')).map(Number).filter((n) => Number.isInteger(n) && n !== process.pid);
  const procs = (await Promise.all(pids.map(readProc))).filter((p): p is ProcInfo => p !== undefined);
  const found = new Set(procs.filter((p) => namesDir(p, dir)).map((p) => p.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  found.delete(process.pid);
  return [...found];
}

/** SIGKILLs every process found by processesUnder(dir) and waits for each to be gone. */
export async function killProcessesUnder(dir: string): Promise<number[]> {
  const pids = await processesUnder(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await Promise.all(pids.map((pid) => waitPidGone(pid, 5_000)));
  return pids;
}

/** Kills what still runs from `dir`, unmounts what is mounted under it, then deletes it. */
export async function destroyTree(dir: string): Promise<void> {
  await killProcessesUnder(dir);
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
