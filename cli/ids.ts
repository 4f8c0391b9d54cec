import { randomBytes } from 'node:crypto';
import { CliError } from './errors.js';

/** containerd's identifier rule (identifiers.Validate); the daemon enforces it too. */
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const MAX_LENGTH = 76;

export function validateId(kind: string, id: string): string {
  if (!IDENTIFIER.test(id) || id.length > MAX_LENGTH) {
    throw new CliError(`${kind} "${id}" is not valid: use letters, digits and single . _ - between them, at most ${MAX_LENGTH} characters`);
  }
  return id;
}

/** 12 hex digits, like docker's short ids: unique enough and easy to type. */
export function generateId(): string {
  return randomBytes(6).toString('hex');
}
