// The token request's abort signal is current for the credential's code while the request is live, and the
// application's promises pay nothing for it outside of token requests: on Node.js 22 an enabled AsyncLocalStorage
// installs a process-wide promise hook, which must be gone once no token request is live. Observed in a child
// process (request-signal-child.ts), because node:test installs async hooks of its own.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { it } from 'node:test';

const CHILD = fileURLToPath(new URL('./request-signal-child.ts', import.meta.url));

it('the request signal is current during a token request, and no promise hook is left once it settled or was abandoned', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CHILD], { env: process.env });
  const seen = JSON.parse(stdout.trim()) as Record<string, boolean>;
  assert.equal(seen.before, false, 'a promise hook was installed before any token request: the probe sees nothing');
  assert.equal(seen.signalCurrent, true, "the credential's code sees its request's signal");
  assert.equal(seen.abandoned, true, 'the deaf request was abandoned at its timeout');
  assert.deepEqual(
    { afterSettled: seen.afterSettled, afterAbandoned: seen.afterAbandoned },
    { afterSettled: false, afterAbandoned: false },
  );
});
