// waitUntil, the polling helper of the tests and emulators: what it does when the process stalls past its deadline.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { it } from 'node:test';
import { waitUntil } from '../../lib/testing/redis-server.js';

it('sees a condition met by data that arrived while the process stalled past the deadline', async (t) => {
  let serverSide: net.Socket | undefined;
  const server = net.createServer((socket) => (serverSide = socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.after(() => {
    client.destroy();
    serverSide?.destroy();
    server.close();
  });
  await once(client, 'connect');
  await waitUntil(() => serverSide, { description: 'the server side of the connection' });
  let received = false;
  client.on('data', () => (received = true));

  const waited = waitUntil(() => received, { timeoutMs: 50, intervalMs: 10, description: 'the data' });
  (serverSide as net.Socket).write('x');
  // The process stalls past the deadline with the data waiting, unread, in the socket (timers run before I/O).
  const until = Date.now() + 200;
  while (Date.now() < until);
  assert.equal(await waited, true);
});
