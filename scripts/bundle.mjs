// Bundle each CLI into ESM with esbuild: a daemon then starts in a fraction of the time (Node spends most of a start
// resolving and compiling hundreds of small modules), which matters when many start at once on a small machine.
// Code splitting: what a start does not need (pino-pretty, only on a terminal; the server's subcommands) is imported
// dynamically and lands in its own chunk under dist/bin/chunks/, read only when used. Minified (names kept) so there
// is less to parse. Native addons (raw-socket, netlink) stay outside the bundle and load from node_modules on first use.
import { rmSync } from 'node:fs'
import { build } from 'esbuild'

rmSync('dist/bin', { recursive: true, force: true })
const result = await build({
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
  legalComments: 'none',
  metafile: true
})

// zod tree-shakes only when imported as a namespace: `import * as z from 'zod'`. One `import { z } from 'zod'`
// anywhere pulls in all of zod (its locales, JSON Schema conversion: 450 KB instead of 90 KB), which every client
// then compiles at start (about 100 ms of CPU on a small machine).
const wholeZod = Object.values(result.metafile.outputs).flatMap((o) => Object.entries(o.inputs))
  .filter(([p, i]) => i.bytesInOutput > 0 && p.includes('zod/v4/locales/') && !p.endsWith('/en.js'))
if (wholeZod.length > 0) {
  console.error(`bundle: all of zod is in the bundle (${wholeZod.length} locales): import it as \`import * as z from 'zod'\`, not \`import { z } from 'zod'\``)
  process.exit(1)
}
