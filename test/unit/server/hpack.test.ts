import { describe, expect, it } from 'vitest';
import { encodeHeaders, HpackDecoder, HpackError } from '../../../services/server/h2/hpack.js';
import { EOS, HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode, huffmanEncode, HuffmanError } from '../../../services/server/h2/huffman.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(decoder: HpackDecoder, block: string): [string, string][] {
  const flat: string[] = [];
  decoder.decode(hex(block), flat);
  const pairs: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i] as string, flat[i + 1] as string]);
  return pairs;
}

function table(decoder: HpackDecoder): [string, string][] {
  const entries: [string, string][] = [];
  for (let i = 1; i <= decoder.tableLength; i++) entries.push(decoder.dynamicEntry(i) as [string, string]);
  return entries;
}

describe('HPACK Huffman code (RFC 7541 Appendix B)', () => {
  it('derives the printed codes from the code lengths', () => {
    const printed: [number, number, number][] = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [97, 0x3, 5],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [200, 0x3ffffe2, 26],
      [255, 0x3ffffee, 26],
      [EOS, 0x3fffffff, 30],
    ];
    for (const [sym, code, len] of printed) {
      expect([sym, HUFFMAN_CODES[sym], HUFFMAN_LENGTHS[sym]]).toEqual([sym, code, len]);
    }
    // A complete prefix code: the Kraft sum is exactly 1.
    expect(HUFFMAN_LENGTHS.reduce((sum, len) => sum + 2 ** -len, 0)).toBe(1);
  });

  it('round-trips every octet', () => {
    let all = '';
    for (let i = 0; i < 256; i++) all += String.fromCharCode(i);
    for (const text of [all, 'www.example.com', '/containerd.services.tasks.v1.Tasks/Create', 'a', '']) {
      const enc = huffmanEncode(text);
      expect(huffmanDecode(enc, 0, enc.length)).toBe(text);
    }
  });

  it('refuses bad padding and EOS', () => {
    // 'a' is 00011; padding of zeros is not a prefix of EOS.
    expect(() => huffmanDecode(Buffer.from([0b00011000]), 0, 1)).toThrow(HuffmanError);
    // Eight bits of padding: longer than seven.
    const www = huffmanEncode('www');
    expect(() => huffmanDecode(Buffer.concat([www, Buffer.from([0xff])]), 0, www.length + 1)).toThrow(HuffmanError);
    // EOS itself (30 ones) followed by padding.
    expect(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4)).toThrow(HuffmanError);
  });
});

describe('HPACK decoder (RFC 7541 Appendix C)', () => {
  it('C.2.1 literal header field with indexing', () => {
    const d = new HpackDecoder();
    expect(decode(d, '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')).toEqual([['custom-key', 'custom-header']]);
    expect(table(d)).toEqual([['custom-key', 'custom-header']]);
    expect(d.tableSize).toBe(55);
  });

  it('C.2.2 literal header field without indexing', () => {
    const d = new HpackDecoder();
    expect(decode(d, '040c 2f73 616d 706c 652f 7061 7468')).toEqual([[':path', '/sample/path']]);
    expect(d.tableLength).toBe(0);
  });

  it('C.2.3 literal header field never indexed', () => {
    const d = new HpackDecoder();
    expect(decode(d, '1008 7061 7373 776f 7264 0673 6563 7265 74')).toEqual([['password', 'secret']]);
    expect(d.tableLength).toBe(0);
  });

  it('C.2.4 indexed header field', () => {
    const d = new HpackDecoder();
    expect(decode(d, '82')).toEqual([[':method', 'GET']]);
    expect(d.tableLength).toBe(0);
  });

  const request1 = [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ];
  const request2 = [...request1, ['cache-control', 'no-cache']];
  const request3 = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ];

  function requests(blocks: [string, string, string]): void {
    const d = new HpackDecoder();
    expect(decode(d, blocks[0])).toEqual(request1);
    expect(table(d)).toEqual([[':authority', 'www.example.com']]);
    expect(d.tableSize).toBe(57);
    expect(decode(d, blocks[1])).toEqual(request2);
    expect(table(d)).toEqual([
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.tableSize).toBe(110);
    expect(decode(d, blocks[2])).toEqual(request3);
    expect(table(d)).toEqual([
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.tableSize).toBe(164);
  }

  it('C.3 requests without Huffman coding', () => {
    requests([
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ]);
  });

  it('C.4 requests with Huffman coding', () => {
    requests([
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ]);
  });

  const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
  const date2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
  const location = 'https://www.example.com';
  const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';

  function responses(blocks: [string, string, string]): void {
    // Appendix C.5 and C.6 run with SETTINGS_HEADER_TABLE_SIZE 256: entries get evicted.
    const d = new HpackDecoder(256);
    expect(decode(d, blocks[0])).toEqual([
      [':status', '302'],
      ['cache-control', 'private'],
      ['date', date1],
      ['location', location],
    ]);
    expect(table(d)).toEqual([
      ['location', location],
      ['date', date1],
      ['cache-control', 'private'],
      [':status', '302'],
    ]);
    expect(d.tableSize).toBe(222);
    expect(decode(d, blocks[1])).toEqual([
      [':status', '307'],
      ['cache-control', 'private'],
      ['date', date1],
      ['location', location],
    ]);
    expect(table(d)).toEqual([
      [':status', '307'],
      ['location', location],
      ['date', date1],
      ['cache-control', 'private'],
    ]);
    expect(d.tableSize).toBe(222);
    expect(decode(d, blocks[2])).toEqual([
      [':status', '200'],
      ['cache-control', 'private'],
      ['date', date2],
      ['location', location],
      ['content-encoding', 'gzip'],
      ['set-cookie', cookie],
    ]);
    expect(table(d)).toEqual([
      ['set-cookie', cookie],
      ['content-encoding', 'gzip'],
      ['date', date2],
    ]);
    expect(d.tableSize).toBe(215);
  }

  it('C.5 responses without Huffman coding (eviction)', () => {
    responses([
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
       2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
       6c65 2e63 6f6d`,
      '4803 3330 37c1 c0bf',
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
       54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
       5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
       3d31`,
    ]);
  });

  it('C.6 responses with Huffman coding (eviction)', () => {
    responses([
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
       2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      '4883 640e ffc1 c0bf',
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
       77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
       9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ]);
  });

  it('applies dynamic table size updates and evicts', () => {
    const d = new HpackDecoder();
    decode(d, '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
    expect(d.tableLength).toBe(1);
    // 001 00000: size 0 empties the table; then 001 11111, 0xe1, 0x1e: 31 + 97 + 30 * 128 = 3968.
    expect(decode(d, '20 3f e11e 82')).toEqual([[':method', 'GET']]);
    expect(d.tableLength).toBe(0);
    // 31 + 98 + 31 * 128 = 4097, above our SETTINGS_HEADER_TABLE_SIZE (4096): refused.
    expect(() => decode(new HpackDecoder(), '3f e21f')).toThrow(HpackError);
    // After a field: refused.
    expect(() => decode(new HpackDecoder(), '82 20')).toThrow(HpackError);
  });

  it('refuses malformed blocks', () => {
    expect(() => decode(new HpackDecoder(), '80')).toThrow(HpackError); // index 0
    expect(() => decode(new HpackDecoder(), 'be')).toThrow(HpackError); // dynamic index 62 of an empty table
    expect(() => decode(new HpackDecoder(), '400a 6375')).toThrow(HpackError); // truncated string
    expect(() => decode(new HpackDecoder(), 'ff')).toThrow(HpackError); // truncated integer
    expect(() => decode(new HpackDecoder(), 'ff ff ff ff ff ff 01')).toThrow(HpackError); // integer overflow
    expect(() => decode(new HpackDecoder(), '0481 00')).toThrow(HpackError); // Huffman padding of zeros
  });
});

describe('HPACK encoder', () => {
  it('uses static indices and plain literals without indexing', () => {
    expect(encodeHeaders([[':status', '200']])).toEqual(Buffer.from([0x88]));
    expect(encodeHeaders([['content-type', 'application/grpc']])).toEqual(Buffer.concat([Buffer.from([0x0f, 0x10, 0x10]), Buffer.from('application/grpc')]));
    expect(encodeHeaders([['grpc-status', '0']])).toEqual(Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.from('grpc-status'), Buffer.from([0x01]), Buffer.from('0')]));
  });

  it('round-trips through the decoder without touching its table', () => {
    const fields: [string, string][] = [
      [':status', '200'],
      [':status', '415'],
      ['content-type', 'application/grpc'],
      ['grpc-message', 'x'.repeat(300)],
      ['a-long-custom-header-name-'.repeat(10), ''],
    ];
    const d = new HpackDecoder();
    expect(decode(d, encodeHeaders(fields).toString('hex'))).toEqual(fields);
    expect(d.tableLength).toBe(0);
  });
});
