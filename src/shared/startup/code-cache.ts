/**
 * Start a CLI from its CommonJS bundle with V8's code cache, the way Node 22's `module.enableCompileCache()` does (Node
 * 20 has none): the bundle's compiled code is kept in a file beside it, so a start deserializes code instead of
 * parsing and compiling 700 KB of JavaScript. About a quarter of a client's start-up CPU before its first `wg` run
 * (see BENCHMARKS.md, issue 16).
 *
 * The cache is `<bundle>.<node version>-<arch>.v8cache`, beside the bundle, so only whoever may change the code may
 * change its cache (the daemons run as root; a cache V8 loads must be as trusted as the code). V8 checks it against
 * the source, its own version and flags; a cache it rejects is ignored and rewritten. Nothing is written when the
 * folder is not writable (a read-only install then starts as it would without a cache). Never fatal: any failure to
 * read or write the cache only costs the time it would have saved.
 *
 * V8 caches only functions compiled by the time the cache is made, and most are compiled lazily, on first call:
 * - a short command (`--help`, `status`) that found no usable cache writes one as it exits;
 * - a daemon writes one `CACHE_WRITE_AFTER_MS` after its start, once its start-up code has run, when that has more
 *   code than the cache it loaded by `CACHE_GROWTH` (so a cache made by `--help` gives way to a daemon's, and a
 *   daemon's start then writes nothing).
 *
 * This file is bundled on its own (scripts/bundle.mjs) and imports only node built-ins.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Script } from 'node:vm'

/** A daemon makes its cache this long after its start: its start-up code (options, first sync, first attempts) has run by then. */
export const CACHE_WRITE_AFTER_MS = 3000
/** An accepted cache is rewritten only when at least this much more code would go into it (it only grows as code runs). */
export const CACHE_GROWTH = 1.1

/**
 * CommonJS's module wrapper: the bundle runs as `require()` would run it, with one more parameter, the bundle's URL,
 * which scripts/bundle.mjs makes `import.meta.url` stand for.
 */
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname, __wgnatBundleUrl) { '
const WRAP_TAIL = '\n})'

export interface BundleStart {
  cacheFile: string
  /** `none`: no cache file; `accepted`: V8 used it; `rejected`: V8 refused it (another node, other flags, changed code). */
  cache: 'none' | 'accepted' | 'rejected'
}

export function cacheFileOf (bundle: string): string {
  return join(dirname(bundle), `${basename(bundle)}.${process.version}-${process.arch}.v8cache`)
}

/** Run the CommonJS bundle `bundle` (an absolute path) with its code cache; see the file's comment. */
export function runBundle (bundle: string, writeAfterMs = CACHE_WRITE_AFTER_MS): BundleStart {
  const cacheFile = cacheFileOf(bundle)
  let cachedData: Buffer | undefined
  try { cachedData = readFileSync(cacheFile) } catch { /* no cache yet */ }
  const script = new Script(WRAP_HEAD + readFileSync(bundle, 'utf8') + WRAP_TAIL, { filename: bundle, cachedData })
  const cache = cachedData === undefined ? 'none' : script.cachedDataRejected === true ? 'rejected' : 'accepted'
  const loaded = cache === 'accepted' ? (cachedData as Buffer).length : 0
  const save = (): void => {
    try {
      const data = script.createCachedData()
      if (data.length > loaded * CACHE_GROWTH) writeAtomicSync(cacheFile, data)
    } catch { /* a cache is an optimisation: a read-only folder, a full disk only cost the time it would save */ }
  }
  const atExit = (): void => { if (loaded === 0) save() }
  process.once('exit', atExit)
  setTimeout(() => { process.off('exit', atExit); save() }, writeAfterMs).unref()
  const module = { exports: {} }
  const run = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string, url: string) => void
  run.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle), pathToFileURL(bundle).href)
  return { cacheFile, cache }
}

/** Write `data` to `path` through a temporary file, fsync and rename: a reader sees the old cache or the new one. */
function writeAtomicSync (path: string, data: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`
  try {
    const fd = openSync(tmp, 'w', 0o644)
    try {
      for (let done = 0; done < data.length;) done += writeSync(fd, data, done)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}
