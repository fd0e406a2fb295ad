// Bundle each CLI with esbuild into one CommonJS file (dist/bin/wgnat-<cli>.bundle.cjs), started by a small CommonJS
// entry (dist/bin/wgnat-<cli>.cjs, the package's bin) through V8's code cache (src/shared/startup/code-cache.ts): a start
// then deserializes compiled code instead of resolving, parsing and compiling dozens of modules, which matters when
// many daemons start at once on a small machine (issue 16). What a start does not need (pino-pretty, only on a
// terminal; the server's subcommands; the UPnP XML parser) is imported dynamically: esbuild keeps such a module in the
// file but runs it only when first imported. Minified, names too: esbuild's `keepNames` adds a call per function and
// class, about 10 ms of CPU at each client start (issue 16), and nothing wgnat prints or checks uses such a name
// (commander's errors take theirs from their class, and are told apart by `instanceof` and `code`). Native addons
// (raw-socket's, netlink's) stay outside the bundle and load from node_modules on first use.
import { execFileSync } from 'node:child_process'
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import { build } from 'esbuild'

/**
 * netlink finds its addon from its own folder (`node-gyp-build(__dirname + '/..')`); in the bundle `__dirname` is
 * dist/bin, so the addon is looked for in the installed package's folder instead.
 */
const netlinkAddon = {
  name: 'netlink-addon',
  setup (b) {
    b.onLoad({ filter: /[\\/]netlink[\\/]dist[\\/]raw\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8')
      const from = "require('node-gyp-build')(__dirname + '/..')"
      if (!text.includes(from)) throw new Error(`bundle: ${args.path} no longer loads its addon with ${from}: update scripts/bundle.mjs`)
      return { contents: text.replace(from, "require('node-gyp-build')(require('node:path').dirname(require.resolve('netlink/package.json')))"), loader: 'js' }
    })
  }
}

const CLIS = { 'wgnat-client': 'src/client/bin.ts', 'wgnat-server': 'src/server/bin.ts' }

rmSync('dist/bin', { recursive: true, force: true })
const result = await build({
  entryPoints: CLIS,
  outdir: 'dist/bin',
  outExtension: { '.js': '.bundle.cjs' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  // raw-socket's JavaScript is a few lines around its addon; netlink's (its rtnetlink part, 270 KB) goes in the bundle,
  // under the code cache, and only its addon loads from node_modules (netlinkAddon).
  external: ['raw-socket', 'netlink/package.json'],
  plugins: [netlinkAddon],
  // jsonc-parser's `main` is a UMD build that loads its parts through a `require` esbuild cannot follow; its ES module
  // build (its `module`) bundles. Node and the tests load the UMD build as it is.
  alias: { 'jsonc-parser': './node_modules/jsonc-parser/lib/esm/main.js' },
  // `import.meta.url` (createRequire for the native addons, the systemd units' folder) is the bundle's own URL, a
  // parameter of the loader's module wrapper (a banner would come before "use strict" and turn strict mode off).
  define: { 'import.meta.url': '__wgnatBundleUrl' },
  logLevel: 'warning',
  legalComments: 'none',
  metafile: true
})

// The loader: on its own, node built-ins only, so an entry reads nothing else before the cache. CommonJS, like the
// entries: an ES module entry costs a start about 15 ms more (Node's ESM loader), a tenth of `--help`.
await build({
  entryPoints: { 'code-cache': 'src/shared/startup/code-cache.ts' },
  outdir: 'dist/bin',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  logLevel: 'warning',
  legalComments: 'none'
})

for (const cli of Object.keys(CLIS)) {
  // The code cache wraps the bundle in CommonJS's function wrapper, where a `#!` line is a syntax error.
  const bundle = `dist/bin/${cli}.bundle.cjs`
  const text = readFileSync(bundle, 'utf8').replace(/^#!.*/, '')
  writeFileSync(bundle, text)
  const entry = `dist/bin/${cli}.cjs`
  // The bundle's checksum names its code cache; computed here, a start loads no zlib to compute it.
  const checksum = crc32(Buffer.from(text, 'utf8')).toString(16).padStart(8, '0')
  const run = `require('./code-cache.cjs').runBundle(require('node:path').join(__dirname, '${cli}.bundle.cjs'), { checksum: '${checksum}' })`
  writeFileSync(entry, `#!/usr/bin/env node\n'use strict'\n${run}\n`)
  chmodSync(entry, 0o755)
  // `--help` alone prints the text the CLI itself printed here, at build time, without loading the CLI: node's own
  // start and nothing else (issue 16). Help wraps at a fixed width (HELP_WIDTH in src/shared/cli.ts) and shows no
  // environment, so the text is the same at run time; test/e2e/cli-errors.test.ts checks it against the CLI's.
  const help = execFileSync(process.execPath, [entry, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })
  if (!help.startsWith(`Usage: ${cli} `)) {
    console.error(`bundle: ${entry} --help printed ${JSON.stringify(help.slice(0, 60))}, not its usage`)
    process.exit(1)
  }
  // Its stdout errors are handled as handleStdoutErrors (src/shared/cli.ts) does: a closed pipe ends quietly.
  writeFileSync(entry, `#!/usr/bin/env node
'use strict'
// ${cli}: \`--help\` alone prints the help recorded at build time (scripts/bundle.mjs); anything else runs
// ${cli}.bundle.cjs through V8's code cache (see src/shared/startup/code-cache.ts).
const a = process.argv
if (a.length === 3 && (a[2] === '--help' || a[2] === '-h')) {
  process.stdout.on('error', (err) => { if (err.code !== 'EPIPE') process.stderr.write('${cli}: writing to stdout failed: ' + err.message + '\\n'); process.exit(err.code === 'EPIPE' ? 0 : 74) })
  process.stdout.write(${JSON.stringify(help)})
} else {
  ${run}
}
`)
  // The entry of earlier versions, which systemd units installed by them still run: the same start.
  const earlier = `dist/bin/${cli}.mjs`
  writeFileSync(earlier, `#!/usr/bin/env node
// ${cli}: the entry of earlier versions (systemd units installed by them run it); the same as ${cli}.cjs.
import './${cli}.cjs'
`)
  chmodSync(earlier, 0o755)
}

// zod tree-shakes only when imported as a namespace: `import * as z from 'zod'`. One `import { z } from 'zod'`
// anywhere pulls in all of zod (its locales, JSON Schema conversion: 450 KB instead of 90 KB), which every client
// then compiles at start (about 100 ms of CPU on a small machine).
const wholeZod = Object.values(result.metafile.outputs).flatMap((o) => Object.entries(o.inputs))
  .filter(([p, i]) => i.bytesInOutput > 0 && p.includes('zod/v4/locales/') && !/\/(en|index)\.js$/.test(p))
if (wholeZod.length > 0) {
  console.error(`bundle: all of zod is in the bundle (${wholeZod.length} locales): import it as \`import * as z from 'zod'\`, not \`import { z } from 'zod'\``)
  process.exit(1)
}

// A dynamic `import()` left in a bundle would fail under the code cache's vm.Script (no module loader there); and a
// bundle that is ASCII only is read as a one-byte string (a single other character, in a regular expression say,
// makes all of it two bytes a character: write it as \u00b5).
for (const cli of Object.keys(CLIS)) {
  const text = readFileSync(`dist/bin/${cli}.bundle.cjs`, 'utf8')
  if (/\bimport\(/.test(text)) {
    console.error(`bundle: dist/bin/${cli}.bundle.cjs still has a dynamic import(): esbuild did not inline it`)
    process.exit(1)
  }
  const other = text.search(/[^\x00-\x7f]/)
  if (other >= 0) {
    console.error(`bundle: dist/bin/${cli}.bundle.cjs is not ASCII: ${JSON.stringify(text.slice(Math.max(0, other - 40), other + 10))}`)
    process.exit(1)
  }
}
