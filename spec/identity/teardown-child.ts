// Run by teardown.test.ts in a process of its own: a client and a provider whose token requests never get an answer,
// then the application's shutdown. The parent checks that this process then exits by itself.
//
//   argv[2]: 'managed-identity' (createManagedIdentityCredentialsProvider; endpoint from IDENTITY_ENDPOINT) or
//            'deaf-credential' (createCredentialsProvider over a credential that never settles and ignores aborts)
//   argv[3]: 'dispose' (quit, then provider.dispose()) or 'last-client' (quit only)
//   argv[4]: Redis port
//   argv[5]: tokenManagerOptions, JSON
// Messages to the parent: 'requested' when the deaf credential is first asked; on 'shutdown' from the parent, it
// shuts down, answers 'down' and closes the channel.
import type { TokenCredential } from '@azure/core-auth';
import {
  createCredentialsProvider,
  createEntraRedis,
  createManagedIdentityCredentialsProvider,
} from '../../lib/index.js';

const [source, shutdown, port, options] = process.argv.slice(2);
const tokenManagerOptions = JSON.parse(options ?? '{}') as Parameters<
  typeof createCredentialsProvider
>[0]['tokenManagerOptions'];
let asked = false;
const deaf: TokenCredential = {
  getToken: () => {
    if (!asked) process.send?.('requested');
    asked = true;
    return new Promise(() => {});
  },
};
const provider =
  source === 'managed-identity'
    ? createManagedIdentityCredentialsProvider({ tokenManagerOptions })
    : createCredentialsProvider({ credential: deaf, tokenManagerOptions });
const redis = createEntraRedis({ host: '127.0.0.1', port: Number(port), credentialsProvider: provider });
redis.on('error', () => {});

process.on('message', (message) => {
  if (message !== 'shutdown') return;
  void redis
    .quit()
    .catch(() => {})
    .then(() => {
      if (shutdown === 'dispose') provider.dispose();
      process.send?.('down', () => process.disconnect());
    });
});
