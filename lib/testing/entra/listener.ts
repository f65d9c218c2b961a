// One HTTP(S) server of the emulator on a loopback port that survives close and reopen (the `down` fault), tracking
// its sockets so that closing it also drops open connections.
import type http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Listener {
  server: http.Server;
  port: number;
  sockets: Set<Socket>;
  listening: boolean;
}

/** Listens on an ephemeral 127.0.0.1 port. */
export async function listen(server: http.Server): Promise<Listener> {
  const listener: Listener = { server, port: 0, sockets: new Set(), listening: false };
  server.on('connection', (socket: Socket) => {
    listener.sockets.add(socket);
    socket.on('close', () => listener.sockets.delete(socket));
  });
  // A client that vanishes mid-request must not crash the test process.
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  listener.port = (server.address() as AddressInfo).port;
  listener.listening = true;
  return listener;
}

/** Listens again on the port it had. */
export async function relisten(listener: Listener): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    listener.server.once('error', reject);
    listener.server.listen(listener.port, '127.0.0.1', () => {
      listener.server.off('error', reject);
      resolve();
    });
  });
  listener.listening = true;
}

/** Stops listening and destroys every open socket. Idempotent. */
export async function closeListener(listener: Listener): Promise<void> {
  if (!listener.listening) return;
  listener.listening = false;
  const closed = new Promise<void>((resolve) => listener.server.close(() => resolve()));
  for (const socket of listener.sockets) socket.destroy();
  listener.sockets.clear();
  await closed;
}
