import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopback, registryEndpoints } from '../../../services/registry/hosts.js';

describe('hosts.toml (containerd certs.d layout)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certsd-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));
  const hosts = async (host: string, text: string): Promise<void> => {
    await mkdir(join(dir, host), { recursive: true });
    await writeFile(join(dir, host, 'hosts.toml'), text);
  };

  it('defaults: https with /v2, Docker Hub at registry-1, loopback falls back to http', async () => {
    const [hub] = await registryEndpoints('docker.io', { hostsDir: dir });
    expect(hub?.base.href).toBe('https://registry-1.docker.io/v2');
    expect(hub?.httpFallback).toBe(false);
    const [local] = await registryEndpoints('127.0.0.1:5000', { hostsDir: dir });
    expect(local?.base.href).toBe('https://127.0.0.1:5000/v2');
    expect(local?.httpFallback).toBe(true);
    const [plain] = await registryEndpoints('r.example:5000', { plainHttp: true });
    expect(plain?.base.href).toBe('http://r.example:5000/v2');
  });

  it('lists mirrors in file order before the server, with their settings', async () => {
    await hosts(
      'r.example:5000',
      `server = "https://r.example:5000"
ca = "server-ca.pem"

[host."https://mirror-b.example"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  [host."https://mirror-b.example".header]
    x-custom = "1"

[host."http://mirror-a.example:8080/prefix"]
  capabilities = ["pull"]
  override_path = true
  ca = ["/abs/ca.pem"]
  client = [["c.pem", "k.pem"]]
`,
    );
    const eps = await registryEndpoints('r.example:5000', { hostsDir: dir });
    expect(eps.map((e) => e.base.href)).toEqual(['https://mirror-b.example/v2', 'http://mirror-a.example:8080/prefix', 'https://r.example:5000/v2']);
    expect([...(eps[0]?.capabilities ?? [])]).toEqual(['pull', 'resolve']);
    expect(eps[0]?.skipVerify).toBe(true);
    expect(eps[0]?.headers).toEqual({ 'x-custom': '1' });
    expect(eps[1]?.ca).toEqual(['/abs/ca.pem']);
    expect(eps[1]?.clientCerts).toEqual([[join(dir, 'r.example:5000', 'c.pem'), join(dir, 'r.example:5000', 'k.pem')]]);
    expect(eps[2]?.ca).toEqual([join(dir, 'r.example:5000', 'server-ca.pem')]);
    expect([...(eps[2]?.capabilities ?? [])]).toEqual(['pull', 'resolve', 'push']);
  });

  it('uses _default for hosts without a directory', async () => {
    await hosts('_default', '[host."https://everything-mirror.example"]\n');
    const eps = await registryEndpoints('other.example', { hostsDir: dir });
    expect(eps.map((e) => e.base.href)).toEqual(['https://everything-mirror.example/v2', 'https://other.example/v2']);
  });

  it('refuses bad files with the file named', async () => {
    await hosts('bad.example', '[host."ftp://x"]\n');
    await expect(registryEndpoints('bad.example', { hostsDir: dir })).rejects.toThrow(/bad\.example\/hosts\.toml: host "ftp:\/\/x" must be an http/);
    await hosts('bad2.example', '[host."https://x"]\ncapabilities = ["fly"]\n');
    await expect(registryEndpoints('bad2.example', { hostsDir: dir })).rejects.toThrow(/unknown capability "fly"/);
    await hosts('bad3.example', 'server = \n');
    await expect(registryEndpoints('bad3.example', { hostsDir: dir })).rejects.toThrow(/bad3\.example\/hosts\.toml/);
  });

  it('treats 127.0.0.0/8, ::1 and localhost as loopback', () => {
    for (const h of ['127.0.0.1:5000', '127.1.2.3', '[::1]:5000', 'localhost:5000', 'LOCALHOST']) expect(isLoopback(h)).toBe(true);
    for (const h of ['128.0.0.1', 'localhost.example.com', '10.0.0.1:5000']) expect(isLoopback(h)).toBe(false);
  });
});
