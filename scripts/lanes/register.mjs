// Loaded with --import by scripts/test-lanes.mjs: installs resolve-hook.mjs.
import { register } from 'node:module';

register('./resolve-hook.mjs', import.meta.url);
