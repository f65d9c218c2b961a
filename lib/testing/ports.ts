import { createServer } from 'node:net';

/**
 * Asks the kernel for a free loopback port. Another process may take it before we bind, which is rare enough here.
 * A helper of the emulators, not part of the documented testing API.
 * @internal
 */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
