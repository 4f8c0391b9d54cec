import { invalidArgument } from './errors.js';

/**
 * Every name a client sends is checked here before it can reach a path, a SQL row or a log line.
 * The rules are containerd's, so a name valid there is valid here and the reverse.
 */
const NAMESPACE_RE = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const NAMESPACE_MAX = 76;
const IDENTIFIER_RE = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const IDENTIFIER_MAX = 76;
const SHA256_HEX_RE = /^[a-f0-9]{64}$/;
const SHA512_HEX_RE = /^[a-f0-9]{128}$/;

export function validateNamespace(name: string): string {
  if (!name) throw invalidArgument('namespace must not be empty');
  if (name.length > NAMESPACE_MAX) throw invalidArgument(`namespace "${clip(name)}": longer than ${NAMESPACE_MAX} characters`);
  if (!NAMESPACE_RE.test(name)) {
    throw invalidArgument(
      `namespace "${clip(name)}": invalid; use letters and digits separated by single '.', '_' or '-'`,
    );
  }
  return name;
}

/** Container, lease and exec IDs. */
export function validateIdentifier(kind: string, id: string): string {
  if (!id) throw invalidArgument(`${kind} id must not be empty`);
  if (id.length > IDENTIFIER_MAX) throw invalidArgument(`${kind} id "${clip(id)}": longer than ${IDENTIFIER_MAX} characters`);
  if (!IDENTIFIER_RE.test(id)) {
    throw invalidArgument(`${kind} id "${clip(id)}": invalid; use letters and digits separated by single '.', '_' or '-'`);
  }
  return id;
}

/**
 * Lease IDs are opaque to containerd: ctr uses "343629245-lqL_" for pulls and the mount path for
 * `ctr images mount`. They only ever key SQL rows, so the key rules apply.
 */
export function validateLeaseId(id: string): string {
  return validateKey('lease id', id);
}

export interface ParsedDigest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

/** A content digest `algorithm:hex`; only algorithms we can verify are accepted. */
export function parseDigest(digest: string): ParsedDigest {
  const colon = digest.indexOf(':');
  if (colon <= 0) throw invalidArgument(`digest "${clip(digest)}": invalid; expected "sha256:<64 hex digits>"`);
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (algorithm === 'sha256') {
    if (!SHA256_HEX_RE.test(hex)) {
      throw invalidArgument(`digest "${clip(digest)}": invalid sha256; expected 64 lowercase hex digits`);
    }
    return { algorithm, hex };
  }
  if (algorithm === 'sha512') {
    if (!SHA512_HEX_RE.test(hex)) {
      throw invalidArgument(`digest "${clip(digest)}": invalid sha512; expected 128 lowercase hex digits`);
    }
    return { algorithm, hex };
  }
  throw invalidArgument(`digest "${clip(digest)}": unsupported algorithm "${clip(algorithm)}"; use sha256`);
}

export function validateDigest(digest: string): string {
  parseDigest(digest);
  return digest;
}

/**
 * Snapshot keys and image names are opaque strings to containerd (extraction keys contain spaces,
 * image names contain '/' and ':'); they never become paths here, so only emptiness, size and
 * control characters are refused.
 */
export function validateKey(kind: string, key: string): string {
  if (!key) throw invalidArgument(`${kind} must not be empty`);
  if (key.length > 4096) throw invalidArgument(`${kind} "${clip(key)}": longer than 4096 characters`);
  if (/[\u0000-\u001f\u007f]/.test(key)) throw invalidArgument(`${kind} "${clip(key)}": contains control characters`);
  return key;
}

const LABEL_MAX = 4096;

export function validateLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!key) throw invalidArgument('label key must not be empty');
    if (key.length + value.length > LABEL_MAX) {
      throw invalidArgument(`label "${clip(key)}": key and value longer than ${LABEL_MAX} characters`);
    }
    out[key] = value;
  }
  return out;
}

function clip(value: string): string {
  const printable = JSON.stringify(value).slice(1, -1);
  return printable.length > 80 ? `${printable.slice(0, 77)}...` : printable;
}
