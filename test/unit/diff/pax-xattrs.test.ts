import { describe, expect, it } from 'vitest';
import { paxXattrs } from '../../../services/diff/pax-xattrs.js';

/** One PAX record: its length prefix counts itself, the space, key=value and the newline. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

describe('paxXattrs', () => {
  it('returns xattr values byte for byte, including =, newlines and invalid UTF-8', () => {
    const binary = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x3d, 0x0a, 0xc3]);
    const raw = Buffer.concat([
      record('path', Buffer.from('a/very/long/name')),
      record('SCHILY.xattr.security.capability', binary),
      record('SCHILY.xattr.user.text', Buffer.from('a=b')),
      record('mtime', Buffer.from('1.5')),
    ]);
    expect(paxXattrs(raw)).toEqual([
      ['security.capability', binary],
      ['user.text', Buffer.from('a=b')],
    ]);
  });

  it('stops at a malformed length instead of reading past the header', () => {
    const raw = Buffer.concat([record('SCHILY.xattr.user.ok', Buffer.from('1')), Buffer.from('999 SCHILY.xattr.user.bad=2\n')]);
    expect(paxXattrs(raw)).toEqual([['user.ok', Buffer.from('1')]]);
  });
});
