import { invalidArgument } from '../errors.js';

/** An OCI platform as image indexes describe it. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const NODE_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', i386: '386', armhf: 'arm', armel: 'arm' };

/** Normalizes as containerd's platforms package does, so "linux/aarch64" and "linux/arm64/v8" match. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  const architecture = ARCH_ALIASES[p.architecture.toLowerCase()] ?? p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return { os, architecture, ...(variant !== undefined ? { variant } : {}) };
}

/** "linux", "linux/arm64", "linux/arm/v7" (an architecture alone means linux). */
export function parsePlatform(spec: string): Platform {
  const parts = spec.split('/');
  if (parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw invalidArgument(`platform "${spec}": expected os[/arch[/variant]], e.g. linux/arm64`);
  }
  const [first = '', second, third] = parts;
  const host = hostPlatform();
  if (parts.length === 1) {
    // A lone word is an OS when it is one we know, else an architecture on linux.
    if (first === 'linux' || first === 'windows' || first === 'darwin' || first === 'freebsd') {
      return normalizePlatform({ os: first, architecture: host.architecture, ...(host.variant ? { variant: host.variant } : {}) });
    }
    return normalizePlatform({ os: 'linux', architecture: first });
  }
  return normalizePlatform({ os: first, architecture: second ?? '', ...(third !== undefined ? { variant: third } : {}) });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

export function hostPlatform(): Platform {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  return normalizePlatform({ os: process.platform === 'win32' ? 'windows' : process.platform, architecture });
}

/** Exact match after normalization; arm variants also accept older ones (a v7 host runs v6). */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (w.variant === h.variant) return true;
  if (w.architecture === 'arm' && w.variant && h.variant) return armLevel(h.variant) <= armLevel(w.variant);
  return false;
}

function armLevel(variant: string): number {
  return Number(variant.replace(/^v/, '')) || 0;
}

/**
 * How well `have` serves `want`: 0 is exact, higher is a worse (older arm variant) fit, undefined
 * is no fit. The best-ranked manifest of an index is the one pulled.
 */
export function platformRank(want: Platform, have: Platform): number | undefined {
  if (!platformMatches(want, have)) return undefined;
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  return w.variant && h.variant ? armLevel(w.variant) - armLevel(h.variant) : 0;
}
