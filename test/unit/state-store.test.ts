import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { StateStore } from '../../src/client/state-store.js'

const A = 'A'.repeat(43) + '='
const B = 'B'.repeat(42) + 'A='

describe('StateStore', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'wgnat-state-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('writes the managed keys sorted, mode 0600, with no temporary file left, and reads them back', async () => {
    const store = new StateStore(join(dir, 'sub'), 'wg0')
    await store.save([B, A])
    expect(JSON.parse(readFileSync(store.path, 'utf8'))).toEqual({ version: 1, interface: 'wg0', managed: [A, B] })
    expect(statSync(store.path).mode & 0o777).toBe(0o600)
    expect(readdirSync(join(dir, 'sub'))).toEqual(['wg0.json'])
    expect(await new StateStore(join(dir, 'sub'), 'wg0').load()).toEqual(new Set([A, B]))
  })

  it('does not write the same set again, and writes a changed one (a new file replaces the old)', async () => {
    const store = new StateStore(dir, 'wg0')
    await store.save([A])
    const first = statSync(store.path).ino
    await store.save(new Set([A]))
    expect(statSync(store.path).ino).toBe(first)
    await store.save([A, B])
    expect(statSync(store.path).ino).not.toBe(first)
    expect(await new StateStore(dir, 'wg0').load()).toEqual(new Set([A, B]))
    await store.save([])
    expect(await new StateStore(dir, 'wg0').load()).toEqual(new Set())
  })

  it('does not rewrite the set it loaded', async () => {
    writeFileSync(join(dir, 'wg0.json'), JSON.stringify({ version: 1, interface: 'wg0', managed: [B, A] }))
    const store = new StateStore(dir, 'wg0')
    const ino = statSync(store.path).ino
    expect(await store.load()).toEqual(new Set([A, B]))
    await store.save([A, B])
    expect(statSync(store.path).ino).toBe(ino)
    await store.save([A])
    expect(await new StateStore(dir, 'wg0').load()).toEqual(new Set([A]))
  })

  it('refuses a state file of another interface, naming the file, with exit code 65 (not restarted by its unit)', async () => {
    writeFileSync(join(dir, 'wg0.json'), JSON.stringify({ version: 1, interface: 'wg1', managed: [] }))
    await expect(new StateStore(dir, 'wg0').load()).rejects.toThrow(/state file '.*wg0\.json' is not a wgnat state file for 'wg0'/)
    await expect(new StateStore(dir, 'wg0').load()).rejects.toMatchObject({ exitCode: 65 })
    writeFileSync(join(dir, 'wg0.json'), '{"version":1,')
    await expect(new StateStore(dir, 'wg0').load()).rejects.toMatchObject({ exitCode: 65, message: expect.stringMatching(/is not JSON/) })
  })

  it('reads an empty file (a power loss before its data reached the disk) as no file', async () => {
    writeFileSync(join(dir, 'wg0.json'), '')
    expect(await new StateStore(dir, 'wg0').load()).toEqual(new Set())
  })

  it('prepare() makes a missing directory, and fails in one line with exit code 73 where none can be made', () => {
    const store = new StateStore(join(dir, 'a', 'b'), 'wg0')
    store.prepare()
    expect(statSync(join(dir, 'a', 'b')).isDirectory()).toBe(true)
    // Under /proc a new directory is "not found" however often its parent exists: Node's recursive mkdir spun there.
    expect(() => { new StateStore('/proc/wgnat-no-such-dir', 'wg0').prepare() }).toThrow(expect.objectContaining({ exitCode: 73, message: expect.stringMatching(/^cannot use state directory '\/proc\/wgnat-no-such-dir': /) }))
    writeFileSync(join(dir, 'file'), '')
    expect(() => { new StateStore(join(dir, 'file'), 'wg0').prepare() }).toThrow(/exists and is not a directory/)
  })
})
