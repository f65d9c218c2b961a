// Moved to lib/testing (published as ioredis-entraid/testing); kept here for the tests' imports.
export * from '../../lib/testing/entra-emulator.js';
