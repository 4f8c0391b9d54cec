import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../../services/events/exchange.js';
import { decodeMessage, messageType, packAny } from '../../../services/server/protos.js';
import { expectBerthError, openTestRoot, recordEvents, sha256Of, writeBlob, type TestRoot } from './harness.js';

let t: TestRoot;

beforeEach(async () => {
  t = await openTestRoot();
});

afterEach(async () => {
  await t.dispose();
});

const payload = () => packAny('containerd.events.NamespaceCreate', { name: 'x', labels: {} });

function publishAll(): void {
  const ex = t.services.exchange;
  ex.publish('default', '/tasks/exit', payload());
  ex.publish('k8s.io', '/tasks/exit', payload());
  ex.publish('default', '/images/create', payload());
  ex.publish('k8s.io', '/containers/delete', payload());
}

const seen = (events: Envelope[]): string[] => events.map((e) => `${e.namespace} ${e.topic}`);

describe('EventExchange', () => {
  it('delivers every event to a subscriber without filters, in order, with a timestamp', async () => {
    const rec = recordEvents(t.services);
    const before = Date.now();
    publishAll();
    const events = await rec.stop();
    expect(seen(events)).toEqual(['default /tasks/exit', 'k8s.io /tasks/exit', 'default /images/create', 'k8s.io /containers/delete']);
    expect(events[0]?.timestamp).toBeGreaterThanOrEqual(before);
    expect(events[0]?.event.type_url).toBe('containerd.events.NamespaceCreate');
  });

  it('filters on topic', async () => {
    const rec = recordEvents(t.services, ['topic=="/tasks/exit"']);
    publishAll();
    expect(seen(await rec.stop())).toEqual(['default /tasks/exit', 'k8s.io /tasks/exit']);
  });

  it('filters on namespace', async () => {
    const rec = recordEvents(t.services, ['namespace==k8s.io']);
    publishAll();
    expect(seen(await rec.stop())).toEqual(['k8s.io /tasks/exit', 'k8s.io /containers/delete']);
  });

  it('combines filters: AND with ",", OR across filter strings, regex on topic', async () => {
    const and = recordEvents(t.services, ['namespace==default,topic=="/tasks/exit"']);
    const or = recordEvents(t.services, ['topic=="/images/create"', 'topic=="/containers/delete"']);
    const regex = recordEvents(t.services, ['topic~="^/tasks/"']);
    publishAll();
    expect(seen(await and.stop())).toEqual(['default /tasks/exit']);
    expect(seen(await or.stop())).toEqual(['default /images/create', 'k8s.io /containers/delete']);
    expect(seen(await regex.stop())).toEqual(['default /tasks/exit', 'k8s.io /tasks/exit']);
  });

  it('delivers events published by services after their transactions commit', async () => {
    const rec = recordEvents(t.services, ['namespace==svc']);
    t.services.namespaces.create('svc');
    t.services.images.create('svc', {
      name: 'a:1',
      labels: {},
      target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 1, annotations: {} },
    });
    expect(seen(await rec.stop())).toEqual(['svc /namespaces/create', 'svc /images/create']);
  });

  it('stops a subscriber when its signal aborts, and a stopped subscriber receives nothing more', async () => {
    const controller = new AbortController();
    const iterator = t.services.exchange.subscribe([], controller.signal);
    const pending = iterator.next();
    t.services.exchange.publish('default', '/tasks/start', payload());
    const first = await pending;
    expect(first.done).toBe(false);
    expect(first.done ? undefined : first.value.topic).toBe('/tasks/start');

    const waiting = iterator.next();
    controller.abort();
    expect(await waiting).toEqual({ done: true, value: undefined });
    t.services.exchange.publish('default', '/tasks/exit', payload());
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('a subscription whose signal is already aborted ends at once', async () => {
    const controller = new AbortController();
    controller.abort();
    const iterator = t.services.exchange.subscribe([], controller.signal);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('one subscriber stopping does not affect another', async () => {
    const stopped = recordEvents(t.services);
    const running = recordEvents(t.services);
    await stopped.stop();
    publishAll();
    expect(stopped.events).toEqual([]);
    expect(await running.stop()).toHaveLength(4);
  });

  it('refuses a malformed topic or namespace and a malformed filter', async () => {
    const ex = t.services.exchange;
    await expectBerthError(() => ex.publish('default', 'no-slash', payload()), 'INVALID_ARGUMENT', /event topic "no-slash"/);
    await expectBerthError(() => ex.publish('bad ns', '/tasks/exit', payload()), 'INVALID_ARGUMENT', /namespace/);
    const controller = new AbortController();
    await expectBerthError(() => ex.subscribe(['topic=="/x'], controller.signal).next(), 'INVALID_ARGUMENT', /unterminated/);
  });

  it('service events decode to their containerd messages with every field set', async () => {
    const rec = recordEvents(t.services, ['namespace==ev']);
    const s = t.services;
    s.namespaces.create('ev', { team: 'a' });
    s.namespaces.update('ev', { team: 'b' });
    const digest = await writeBlob(s, 'ev', 'payload');
    await s.content.delete('ev', digest);
    s.snapshots.prepare('ev', 'extract-1', '', {});
    s.snapshots.commit('ev', 'layer', 'extract-1', {});
    s.snapshots.prepare('ev', 'work', 'layer', {});
    await s.snapshots.remove('ev', 'work');
    await s.snapshots.remove('ev', 'layer');
    const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Of('m'), size: 1, annotations: {} };
    s.images.create('ev', { name: 'img:1', labels: { l: '1' }, target });
    s.images.update('ev', { name: 'img:1', labels: { l: '2' }, target });
    await s.images.delete('ev', 'img:1');
    s.namespaces.delete('ev');
    await rec.stop();

    const decoded = rec.events.map((e) => [e.topic, decodeMessage(messageType(e.event.type_url), e.event.value)]);
    expect(decoded).toEqual([
      ['/namespaces/create', { name: 'ev', labels: { team: 'a' } }],
      ['/namespaces/update', { name: 'ev', labels: { team: 'b' } }],
      ['/content/delete', { digest }],
      ['/snapshot/prepare', { key: 'extract-1', parent: '' }],
      ['/snapshot/commit', { key: 'extract-1', name: 'layer' }],
      ['/snapshot/prepare', { key: 'work', parent: 'layer' }],
      ['/snapshot/remove', { key: 'work' }],
      ['/snapshot/remove', { key: 'layer' }],
      ['/images/create', { name: 'img:1', labels: { l: '1' } }],
      ['/images/update', { name: 'img:1', labels: { l: '2' } }],
      ['/images/delete', { name: 'img:1' }],
      ['/namespaces/delete', { name: 'ev' }],
    ]);
  });
});
