import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fetchJson, hasFields, serveJson } from '../../src/shared/json-socket.js'

const isThing = (v: unknown): v is { name: string, items: unknown[] } => hasFields(v, { name: 'string', items: 'array' })

describe('status sockets (json-socket)', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'wgnat-sock-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('serves the value, and a second daemon replaces a socket left at the path', async () => {
    const path = join(dir, 'run', 'x.sock')
    const first = await serveJson(path, () => ({ name: 'first', items: [] }))
    const second = await serveJson(path, () => ({ name: 'second', items: [1] }))
    expect(await fetchJson(path, 'wgnat-client', isThing)).toEqual({ name: 'second', items: [1] })
    await second.close()
    await first.close()
  })

  it('never removes a file that is not a socket: a --status-socket naming a config fails and the file stays', async () => {
    const path = join(dir, 'wg0.conf')
    writeFileSync(path, 'precious\n')
    await expect(serveJson(path, () => ({}))).rejects.toThrow(`'${path}' exists and is not a socket; not replacing it`)
    expect(readFileSync(path, 'utf8')).toBe('precious\n')
  })

  it.each([['{}', {}], ['[]', []], ['null', null], ['the other daemon\'s view', { interface: 'wg0', nodes: [], pairs: [] }], ['a number for a list', { name: 'x', items: 42 }]])(
    'refuses an answer without the expected outline (%s) in one line', async (_what, answer) => {
      const path = join(dir, 'y.sock')
      const server = await serveJson(path, () => answer)
      await expect(fetchJson(path, 'wgnat-client', isThing)).rejects.toThrow(`status socket '${path}' did not answer with a wgnat-client status (another daemon's socket?)`)
      await server.close()
    })

  it('says no daemon runs when nothing listens', async () => {
    await expect(fetchJson(join(dir, 'none.sock'), 'wgnat-server', isThing)).rejects.toMatchObject({ exitCode: 69, message: expect.stringMatching(/^no wgnat-server running for this interface/) })
  })
})
