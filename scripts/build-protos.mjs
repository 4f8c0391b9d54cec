// Parses proto/ once at build time into dist/proto.json: loading that JSON is several times
// faster than parsing the .proto files, and every berthd, shim and CLI start pays for it.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import protobuf from 'protobufjs';

const root = new URL('..', import.meta.url).pathname;
const protoDir = join(root, 'proto');
const list = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? list(join(dir, e.name)) : e.name.endsWith('.proto') ? [relative(protoDir, join(dir, e.name))] : [],
  );
const parsed = new protobuf.Root();
parsed.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(protoDir, target));
parsed.loadSync(list(protoDir), { keepCase: true });
parsed.resolveAll();
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'proto.json'), JSON.stringify(parsed.toJSON()));
