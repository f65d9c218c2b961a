// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { it } from 'node:test';
import { Redis } from 'ioredis';

// Guards the test harness itself: a run meant for ioredis 6 must really load ioredis 6.
it(`runs against ioredis ${process.env.IOREDIS_MAJOR ?? '5'}`, async () => {
  const expected = process.env.IOREDIS_MAJOR ?? '5';
  const require = createRequire(import.meta.url);
  const name = expected === '6' ? 'ioredis6' : 'ioredis';
  const loaded = (await import(name)) as { Redis: unknown };
  assert.equal(Redis, loaded.Redis);
  const { version } = require(`${name}/package.json`) as { version: string };
  assert.equal(version.split('.')[0], expected);
});
