import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { Script } from 'node:vm'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cacheFileOf, checksumOf, roleOf, runBundle } from '../../src/shared/startup/code-cache.js'

// A bundle in the shape scripts/bundle.mjs makes: CommonJS, strict, `import.meta.url` turned into `__wgnatBundleUrl`.
const BUNDLE = `"use strict";
const { join } = require('node:path');
function work (n) { let s = 0; for (let i = 0; i < n; i++) s += i; return s }
globalThis.__codeCacheTest = { sum: work(10), url: __wgnatBundleUrl, file: __filename, strict: (function () { return this === undefined })(), exported: module.exports === exports, joined: join('a', 'b') };
`

const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 20)) }
const seen = (): Record<string, unknown> | undefined => (globalThis as { __codeCacheTest?: Record<string, unknown> }).__codeCacheTest

describe('runBundle (code cache)', () => {
  let dir: string
  let bundle: string
  const cacheOf = (): string => cacheFileOf(bundle, checksumOf(readFileSync(bundle, 'utf8')), 'daemon', {})
  const caches = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.v8cache'))
  beforeEach(() => {
    delete process.env.CACHE_DIRECTORY
    dir = mkdtempSync(join(tmpdir(), 'wgnat-code-cache-'))
    bundle = join(dir, 'cli.cjs')
    writeFileSync(bundle, BUNDLE)
  })
  afterEach(() => { delete process.env.CACHE_DIRECTORY; rmSync(dir, { recursive: true, force: true }) })

  it('names the cache by the checksum the build gave (no zlib at start), which is the CRC-32 it would compute', async () => {
    expect(checksumOf('hello')).toBe('3610a686')
    const given = checksumOf(BUNDLE)
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0, checksum: given }).cacheFile).toBe(cacheOf())
    await settle()
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('accepted')
    // Another build's checksum: another cache, none yet.
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 10_000, checksum: '00000000' }).cache).toBe('none')
  })

  it('runs the bundle as CommonJS, strict, with its own URL, and writes a cache V8 then accepts', async () => {
    const first = runBundle(bundle, { role: 'daemon', writeAfterMs: 0 })
    expect(first.cache).toBe('none')
    expect(seen()).toEqual({ sum: 45, url: `file://${bundle}`, file: bundle, strict: true, exported: true, joined: 'a/b' })
    await settle()
    expect(existsSync(cacheOf())).toBe(true)
    expect(basename(cacheOf())).toMatch(new RegExp(`^cli\\.cjs\\.daemon\\.[0-9a-f]{8}\\.${process.version.replace(/\./g, '\\.')}-${process.arch}\\.v8cache$`))
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('accepted')
    // No temporary file is left behind.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('a daemon that stops early writes an early cache, used until one that runs long enough replaces it', async () => {
    const exits: Array<() => void> = []
    const onExit = (fn: () => void): { cancel: () => void } => { exits.push(fn); return { cancel: () => { exits.splice(exits.indexOf(fn), 1) } } }
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 10_000, onExit }).cache).toBe('none')
    await settle()
    expect(caches()).toEqual([])
    for (const fn of exits.splice(0)) fn()
    const early = basename(cacheOf()).replace('.daemon.', '.daemon-early.')
    expect(caches()).toEqual([early])
    // The next start uses it, and (not stopping early) writes the full one, which replaces it; no second early one.
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0, onExit }).cache).toBe('accepted')
    expect(exits).toEqual([])
    await settle()
    expect(caches()).toEqual([basename(cacheOf())])
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0, onExit }).cache).toBe('accepted')
  })

  it('a daemon that loaded a full cache leaves it as it is', async () => {
    runBundle(bundle, { role: 'daemon', writeAfterMs: 0 })
    await settle()
    const written = statSync(cacheOf())
    const make = vi.spyOn(Script.prototype, 'createCachedData')
    try {
      expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('accepted')
      await settle()
      // Not even made again (it costs CPU while a mesh forms), let alone written: the same file.
      expect(make).not.toHaveBeenCalled()
    } finally { make.mockRestore() }
    expect(statSync(cacheOf()).ino).toBe(written.ino)
    expect(statSync(cacheOf()).mtimeMs).toBe(written.mtimeMs)
  })

  it('a new build of the same length gets its own cache (V8 checks only the length), and the old one goes', async () => {
    runBundle(bundle, { role: 'daemon', writeAfterMs: 0 })
    await settle()
    const old = cacheOf()
    writeFileSync(bundle, BUNDLE.replace('work(10)', 'work(11)'))
    expect(readFileSync(bundle, 'utf8')).toHaveLength(BUNDLE.length)
    expect(cacheOf()).not.toBe(old)
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('none')
    expect(seen()?.sum).toBe(55)
    await settle()
    expect(caches()).toEqual([basename(cacheOf())])
  })

  it('treats a damaged cache as rejected: the bundle still runs, and a good cache replaces it', async () => {
    writeFileSync(cacheOf(), Buffer.from('not a V8 code cache at all'))
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('rejected')
    expect(seen()?.sum).toBe(45)
    await settle()
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('accepted')
  })

  it('runs without a cache, and throws nothing, where the cache cannot be written', async () => {
    // A folder in the cache's place: reading and renaming onto it fail, even for root.
    mkdirSync(cacheOf())
    expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('none')
    expect(seen()?.sum).toBe(45)
    await settle()
    expect(readdirSync(dir).sort()).toEqual(['cli.cjs', basename(cacheOf())])
  })

  it('keeps the cache in systemd\'s CacheDirectory when the service has one', async () => {
    const cacheDir = join(dir, 'var-cache-wgnat')
    mkdirSync(cacheDir)
    process.env.CACHE_DIRECTORY = cacheDir
    const r = runBundle(bundle, { role: 'daemon', writeAfterMs: 0 })
    expect(r.cacheFile.startsWith(cacheDir + '/')).toBe(true)
    await settle()
    expect(readdirSync(cacheDir)).toEqual([basename(r.cacheFile)])
    expect(caches()).toEqual([])
    // A relative path is not trusted as the service's folder.
    expect(cacheFileOf(bundle, checksumOf(BUNDLE), 'daemon', { CACHE_DIRECTORY: 'relative/dir' }).startsWith(dir + '/')).toBe(true)
  })
})

describe('runBundle: a cache others may write is not loaded', () => {
  it('ignores a cache file writable by group or others, and replaces it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgnat-code-cache-'))
    try {
      const bundle = join(dir, 'cli.cjs')
      writeFileSync(bundle, BUNDLE)
      runBundle(bundle, { role: 'daemon', writeAfterMs: 0 })
      await settle()
      const file = cacheFileOf(bundle, checksumOf(readFileSync(bundle)), 'daemon', {})
      expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('accepted')
      chmodSync(file, 0o666)
      expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('none')
      await settle()
      expect(statSync(file).mode & 0o777).toBe(0o644)
      expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('accepted')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('roleOf: which cache a start uses', () => {
  it.each([
    [[], 'daemon'],
    [['-i', 'wg0', '-r', 'key', '-t', '1m'], 'daemon'],
    [['--interface', 'wg0', '--log-level', 'debug'], 'daemon'],
    [['--help'], 'command'],
    [['-i', 'wg0', '-h'], 'command'],
    [['--version'], 'command'],
    [['status', '-i', 'wg0'], 'command'],
    [['add-peer', 'laptop'], 'command']
  ])('%j: %s', (args, role) => {
    expect(roleOf(args)).toBe(role)
  })

  it('a command and the daemon keep separate caches, and a command writes its own only as it exits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgnat-code-cache-'))
    try {
      const bundle = join(dir, 'cli.cjs')
      writeFileSync(bundle, BUNDLE)
      expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('none')
      await settle()
      expect(runBundle(bundle, { role: 'command', writeAfterMs: 0 }).cache).toBe('none')
      await settle()
      // The command's cache waits for the exit (none yet), the daemon's was written by its timer.
      expect(readdirSync(dir).filter((f) => f.endsWith('.v8cache')).map((f) => f.split('.')[2])).toEqual(['daemon'])
      expect(runBundle(bundle, { role: 'daemon', writeAfterMs: 0 }).cache).toBe('accepted')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
