// Bundle each CLI into ESM with esbuild: a daemon then starts in a fraction of the time (Node spends most of a start
// resolving and compiling hundreds of small modules), which matters when many start at once on a small machine.
// Code splitting: what a start does not need (pino-pretty, only on a terminal; the server's subcommands) is imported
// dynamically and lands in its own chunk under dist/bin/chunks/, read only when used. Minified (names kept) so there
// is less to parse. Native addons (raw-socket, netlink) stay outside the bundle and load from node_modules on first use.
import { rmSync } from 'node:fs'
import { build } from 'esbuild'

rmSync('dist/bin', { recursive: true, force: true })
await build({
  entryPoints: { 'wgnat-client': 'src/client/bin.ts', 'wgnat-server': 'src/server/bin.ts' },
  outdir: 'dist/bin',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  keepNames: true,
  external: ['raw-socket', 'netlink'],
  // CommonJS dependencies inside an ESM bundle still call require().
  banner: { js: "import { createRequire as __wgnatCreateRequire } from 'node:module'; const require = __wgnatCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none'
})
