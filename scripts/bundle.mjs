// Bundle each CLI into one ESM file: a daemon then starts in about half the time (Node spends most of a start
// resolving and compiling hundreds of small modules), which matters when many start at once on a small machine.
// Native addons (raw-socket, netlink) stay outside the bundle and load from node_modules.
import { build } from 'esbuild'

const shared = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['raw-socket', 'netlink'],
  // CommonJS dependencies inside an ESM bundle still call require().
  banner: { js: "import { createRequire as __wgnatCreateRequire } from 'node:module'; const require = __wgnatCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none'
}

await Promise.all([
  build({ ...shared, entryPoints: ['src/client/bin.ts'], outfile: 'dist/bin/wgnat-client.mjs' }),
  build({ ...shared, entryPoints: ['src/server/bin.ts'], outfile: 'dist/bin/wgnat-server.mjs' })
])
