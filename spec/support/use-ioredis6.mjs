// Loaded with --import when the suite runs against ioredis 6: every import of "ioredis" (the library's and the
// tests') resolves to the ioredis6 alias installed as a dev dependency.
import { register } from 'node:module';

register('./ioredis6-resolve-hook.mjs', import.meta.url);
