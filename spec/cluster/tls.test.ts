// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createEntraCluster } from '../../lib/create-entra-cluster.js';
import { ClusterWorld, countEvents, waitUntil } from '../../harness/world.js';

let world: ClusterWorld;
before(async () => {
  world = await ClusterWorld.start({ tls: true, tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

it('OSS cluster policy: natMap and TLS (servername) through TLS-terminating proxies, across rotations', async () => {
  const provider = world.provider();
  const cluster = world.track(
    createEntraCluster(world.amr.startupNodes(), {
      ...world.clusterOptions(),
      credentialsProvider: provider,
      dnsLookup: (address, callback) => callback(null, address),
    }),
  );
  for (let i = 0; i < 20; i++) await cluster.set(`tls:${i}`, String(i));
  const reauths = countEvents(provider, 'reauthenticated');
  await waitUntil(() => reauths.count >= 6, {
    timeoutMs: 15_000,
    description: 'node connections re-authenticated twice',
  });
  assert.equal(await cluster.get('tls:19'), '19');
  for (const node of cluster.nodes('master')) assert.equal(await node.call('ACL', 'WHOAMI'), world.identity.oid);
  assert.equal(world.amr.total('expiryDisconnects'), 0);
});
