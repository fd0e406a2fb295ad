/**
 * Raw UDP in real network namespaces: STUN discovery and hole punching from a port another socket owns.
 *
 *   A (client, 198.18.200.2) --- R (router, .200.1 / .201.1) --- B (STUN server and peer, 198.18.201.2)
 *
 * A udp socket bound to port P in A stands in for WireGuard. Raw sockets only see their own namespace, so every
 * piece runs as `ip netns exec NS node raw-udp-runner.js MODE` from a private build of the fixture (built with
 * tsc into a temporary directory, so the shared dist/ is left alone).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const isRoot = process.getuid?.() === 0
if (!isRoot) console.warn('SKIPPING test/e2e/raw-udp.test.ts: needs root (network namespaces and raw sockets)')

const id = randomBytes(3).toString('hex')
const NS = { a: `wgnraw-${id}-a`, r: `wgnraw-${id}-r`, b: `wgnraw-${id}-b` }
const IF = { a: `wr${id}a`, ra: `wr${id}ra`, rb: `wr${id}rb`, b: `wr${id}b` }
const ADDR = { a: '198.18.200.2', ra: '198.18.200.1', rb: '198.18.201.1', b: '198.18.201.2' }
const WG_PORT = 51820
const STUN = { address: ADDR.b, port: 3478 }
const PUNCH_HEX = '0077676e'

let buildDir = ''
let runner = ''
const procs = new Set<Proc>()
let idleProbe: any // the first probe's figures, for comparison with the probe under load

function sh (...args: string[]): string {
  return execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}
const inNs = (ns: string, ...args: string[]): string => sh('ip', 'netns', 'exec', ns, ...args)

function cleanupNamespaces (): void {
  for (const ns of Object.values(NS)) {
    try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch { /* not there */ }
  }
}

/** One runner process in a namespace; its stdout JSON lines are collected as they come. */
class Proc {
  readonly lines: any[] = []
  readonly child: ChildProcessWithoutNullStreams
  readonly exited: Promise<number | null>
  stderr = ''
  private waiters: Array<() => void> = []

  constructor (readonly ns: string, readonly mode: string, opts: object = {}) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--expose-gc', runner, mode, JSON.stringify(opts)], { stdio: 'pipe' })
    procs.add(this)
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      try { this.lines.push(JSON.parse(line)) } catch { this.lines.push({ event: 'garbage', line }) }
      for (const wake of this.waiters.splice(0)) wake()
    })
    this.child.stderr.on('data', (chunk: Buffer) => { this.stderr += chunk.toString() })
    this.exited = new Promise((resolve) => this.child.on('close', (code) => { procs.delete(this); resolve(code); for (const wake of this.waiters.splice(0)) wake() }))
  }

  /** The first line matching `predicate`, waiting up to `timeoutMs`. */
  async waitFor (predicate: (line: any) => boolean, timeoutMs = 10_000): Promise<any> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.lines.find(predicate)
      if (found !== undefined) return found
      const failed = this.lines.find(l => l.event === 'error')
      if (failed !== undefined) throw new Error(`${this.mode} in ${this.ns} failed: ${failed.error}\n${this.stderr}`)
      if (Date.now() > deadline) throw new Error(`${this.mode} in ${this.ns}: timed out; lines: ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async ready (): Promise<any> { return await this.waitFor(l => l.event === 'ready') }

  command (command: object): void { this.child.stdin.write(JSON.stringify(command) + '\n') }

  /** End stdin, wait for the process to report and exit; returns its last line. */
  async finish (): Promise<any> {
    this.child.stdin.end()
    const code = await Promise.race([this.exited, new Promise(resolve => setTimeout(() => resolve('timeout'), 10_000))])
    if (code !== 0) throw new Error(`${this.mode} in ${this.ns} exited with ${String(code)}: ${this.stderr}`)
    return this.lines.at(-1)
  }
}

/** Run a one-shot mode and return its result line. */
async function runOnce (ns: string, mode: string, opts: object, timeoutMs = 20_000): Promise<any> {
  const proc = new Proc(ns, mode, opts)
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs)
  const code = await proc.exited
  clearTimeout(timer)
  if (code !== 0) throw new Error(`${mode} in ${ns} exited with ${String(code)}: ${JSON.stringify(proc.lines)} ${proc.stderr}`)
  return proc.lines.find(l => l.event === 'result')
}

const settle = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const messagesFrom = (proc: Proc, from: string): any[] => proc.lines.filter(l => l.event === 'message' && l.from === from)

describe.skipIf(!isRoot)('raw UDP in network namespaces', () => {
  let server: Proc

  beforeAll(async () => {
    process.on('exit', cleanupNamespaces) // last resort if the run dies before afterAll

    buildDir = mkdtempSync(join(tmpdir(), `wgnraw-${id}-`))
    writeFileSync(join(buildDir, 'package.json'), '{"type":"module"}\n')
    symlinkSync(join(ROOT, 'node_modules'), join(buildDir, 'node_modules'))
    execFileSync(join(ROOT, 'node_modules/.bin/tsc'), [
      '--outDir', buildDir, '--rootDir', ROOT,
      '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023',
      '--types', 'node', '--skipLibCheck', '--strict', '--noUncheckedIndexedAccess',
      join(ROOT, 'test/e2e/fixtures/raw-udp-runner.ts')
    ], { cwd: ROOT, stdio: 'pipe' })
    runner = join(buildDir, 'test/e2e/fixtures/raw-udp-runner.js')

    for (const ns of Object.values(NS)) sh('ip', 'netns', 'add', ns)
    sh('ip', 'link', 'add', IF.a, 'netns', NS.a, 'type', 'veth', 'peer', 'name', IF.ra, 'netns', NS.r)
    sh('ip', 'link', 'add', IF.b, 'netns', NS.b, 'type', 'veth', 'peer', 'name', IF.rb, 'netns', NS.r)
    const up = (ns: string, dev: string, cidr: string): void => {
      sh('ip', '-n', ns, 'addr', 'add', cidr, 'dev', dev)
      sh('ip', '-n', ns, 'link', 'set', dev, 'up')
    }
    for (const ns of Object.values(NS)) sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    up(NS.a, IF.a, `${ADDR.a}/24`)
    up(NS.r, IF.ra, `${ADDR.ra}/24`)
    up(NS.r, IF.rb, `${ADDR.rb}/24`)
    up(NS.b, IF.b, `${ADDR.b}/24`)
    sh('ip', '-n', NS.a, 'route', 'add', 'default', 'via', ADDR.ra)
    sh('ip', '-n', NS.b, 'route', 'add', 'default', 'via', ADDR.rb)
    inNs(NS.r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')

    server = new Proc(NS.b, 'stun-server', { addresses: [STUN.address], port: STUN.port })
    await server.ready()
  })

  afterAll(async () => {
    for (const proc of procs) proc.child.kill('SIGKILL')
    cleanupNamespaces()
    process.off('exit', cleanupNamespaces)
    if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true })
    const left = sh('ip', 'netns', 'list').split('\n').filter(line => line.includes(`wgnraw-${id}`))
    expect(left).toEqual([])
  })

  it('probes from the port a socket owns: the mapping is A\'s address and that port, and the socket keeps working', async () => {
    const wg = new Proc(NS.a, 'udp-socket', { port: WG_PORT })
    await wg.ready()
    const peer = new Proc(NS.b, 'udp-socket', { port: 40000 })
    await peer.ready()

    const probe = await runOnce(NS.a, 'probe', { localPort: WG_PORT, servers: [STUN], timeoutMs: 1000, repeat: 3 })
    idleProbe = probe
    const { result } = probe
    expect(result.failures).toEqual([])
    expect(result.samples).toEqual([{ server: `${STUN.address}:${STUN.port}`, mapped: { address: ADDR.a, port: WG_PORT } }])

    // The owner of the port got its own copy of the STUN answer (wireguard-go drops it as an invalid message).
    const copy = await wg.waitFor(l => l.event === 'message' && l.from === `${STUN.address}:${STUN.port}`)
    expect(copy.hex.startsWith('0101')).toBe(true) // Binding success response

    // The bound socket still receives and sends on its port, both ways.
    peer.command({ address: ADDR.a, port: WG_PORT, payload: 'ping' })
    await peer.waitFor(l => l.event === 'message' && l.from === `${ADDR.a}:${WG_PORT}` && l.hex === Buffer.from('pong').toString('hex'))
    wg.command({ address: ADDR.b, port: 40000, payload: 'ping' })
    await wg.waitFor(l => l.event === 'message' && l.from === `${ADDR.b}:40000` && l.hex === Buffer.from('pong').toString('hex'))

    await wg.finish()
    await peer.finish()
  })

  it('punches with TTL 1 only as far as the router; TTL 64 reaches the far side', async () => {
    const farPort = 40001
    const peer = new Proc(NS.b, 'udp-socket', { port: farPort })
    await peer.ready()
    // Count the TTL-1 punches arriving at the router (the raw table sees them before the TTL check drops them).
    const rule = ['-p', 'udp', '--dport', String(farPort), '-m', 'ttl', '--ttl-eq', '1']
    inNs(NS.r, 'iptables', '-t', 'raw', '-A', 'PREROUTING', ...rule)
    try {
      // gc: garbage collection runs all through this punch; the raw socket must survive it.
      const low = await runOnce(NS.a, 'punch', { localPort: WG_PORT, targets: [{ address: ADDR.b, port: farPort }], count: 3, intervalMs: 20, ttl: 1, gc: true })
      expect(low).toEqual({ event: 'result', result: { sent: 3, errors: [] }, gc: true })
      await settle(500)
      expect(messagesFrom(peer, `${ADDR.a}:${WG_PORT}`)).toEqual([])
      const counters = inNs(NS.r, 'iptables', '-t', 'raw', '-L', 'PREROUTING', '-v', '-n', '-x')
      const packets = Number(counters.split('\n').find(line => line.includes(`dpt:${farPort}`))?.trim().split(/\s+/)[0])
      expect(packets).toBe(3)
    } finally {
      inNs(NS.r, 'iptables', '-t', 'raw', '-D', 'PREROUTING', ...rule)
    }

    const high = await runOnce(NS.a, 'punch', { localPort: WG_PORT, targets: [{ address: ADDR.b, port: farPort }], count: 2, intervalMs: 20, ttl: 64 })
    expect(high.result).toEqual({ sent: 2, errors: [] })
    await peer.waitFor(() => messagesFrom(peer, `${ADDR.a}:${WG_PORT}`).length === 2)
    expect(messagesFrom(peer, `${ADDR.a}:${WG_PORT}`).map(l => l.hex)).toEqual([PUNCH_HEX, PUNCH_HEX])
    await peer.finish()
  })

  it('through a masquerading router: the probe sees the NAT mapping, and a punch opens it for the peer', async () => {
    // Fresh ports: conntrack entries from the tests above were made without NAT and would bypass it.
    const localPort = WG_PORT + 1
    const farPort = 40002
    const masquerade = ['-o', IF.rb, '-j', 'MASQUERADE']
    inNs(NS.r, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', ...masquerade)
    const wg = new Proc(NS.a, 'udp-socket', { port: localPort })
    const peer = new Proc(NS.b, 'udp-socket', { port: farPort })
    try {
      await wg.ready()
      await peer.ready()
      const { result } = await runOnce(NS.a, 'probe', { localPort, servers: [STUN], timeoutMs: 1000 })
      // Linux masquerading keeps the source port when it is free.
      expect(result.samples).toEqual([{ server: `${STUN.address}:${STUN.port}`, mapped: { address: ADDR.rb, port: localPort } }])

      const { result: punched } = await runOnce(NS.a, 'punch', { localPort, targets: [{ address: ADDR.b, port: farPort }], count: 1, ttl: 64 })
      expect(punched.sent).toBe(1)
      await peer.waitFor(l => l.event === 'message' && l.from === `${ADDR.rb}:${localPort}` && l.hex === PUNCH_HEX)
      // The peer answers the mapped endpoint; the NAT lets it in to the socket that owns the port, not to us.
      peer.command({ address: ADDR.rb, port: localPort, payload: 'ping' })
      await wg.waitFor(l => l.event === 'message' && l.from === `${ADDR.b}:${farPort}` && l.hex === Buffer.from('ping').toString('hex'))
      await peer.waitFor(l => l.event === 'message' && l.from === `${ADDR.rb}:${localPort}` && l.hex === Buffer.from('pong').toString('hex'))
    } finally {
      inNs(NS.r, 'iptables', '-t', 'nat', '-D', 'POSTROUTING', ...masquerade)
      await wg.finish()
      await peer.finish()
    }
  })

  it('measures the receive path while 20,000 datagrams hit another port', async () => {
    const sinkPort = 40100
    const blastCount = 20_000
    const sink = new Proc(NS.a, 'udp-socket', { port: sinkPort, quiet: true })
    await sink.ready()

    const measure = async (open: boolean, blast: boolean): Promise<any> => {
      const cost = new Proc(NS.a, 'receive-cost', { dstPort: WG_PORT, open })
      await cost.ready()
      let blastResult: any
      if (blast) {
        blastResult = await runOnce(NS.b, 'blast', { address: ADDR.a, port: sinkPort, count: blastCount })
      } else {
        await settle(500)
      }
      await settle(200) // let the queue drain
      const done = await cost.finish()
      return { ...done, blast: blastResult }
    }
    const idle = await measure(true, false)
    const closed = await measure(false, true)
    const open = await measure(true, true)

    expect(open.stats.delivered).toBe(0)
    expect(open.stats.malformed).toBe(0)
    expect(open.stats.otherPort).toBeGreaterThan(blastCount * 0.5)
    const perDatagramUs = (open.cpu.totalMs - closed.cpu.totalMs) * 1000 / open.stats.seen

    // A probe while a longer blast runs: it still gets its answer.
    const blaster = new Proc(NS.b, 'blast', { address: ADDR.a, port: sinkPort, durationMs: 2_000 })
    await blaster.waitFor(l => l.event === 'started')
    await settle(200)
    const underLoad = await runOnce(NS.a, 'probe', { localPort: WG_PORT, servers: [STUN], timeoutMs: 1000, repeat: 3 })
    const blasted = await blaster.waitFor(l => l.event === 'result', 15_000)
    expect(underLoad.result.samples).toEqual([{ server: `${STUN.address}:${STUN.port}`, mapped: { address: ADDR.a, port: WG_PORT } }])

    const sinkDone = await sink.finish()
    console.log([
      'raw receive path figures:',
      `  idle receiver, ${idle.wallMs.toFixed(0)} ms: cpu ${idle.cpu.totalMs.toFixed(1)} ms, seen ${idle.stats.seen}`,
      `  no receiver, ${blastCount} datagrams to another port in ${closed.blast.elapsedMs.toFixed(0)} ms: cpu ${closed.cpu.totalMs.toFixed(1)} ms`,
      `  receiver open, ${blastCount} datagrams in ${open.blast.elapsedMs.toFixed(0)} ms: cpu ${open.cpu.totalMs.toFixed(1)} ms ` +
        `(user ${open.cpu.userMs.toFixed(1)}, system ${open.cpu.systemMs.toFixed(1)}), seen ${open.stats.seen} ` +
        `(${(100 * open.stats.seen / blastCount).toFixed(1)}%), other port ${open.stats.otherPort}, socket errors ${open.stats.socketErrors}`,
      `  => about ${perDatagramUs.toFixed(2)} us of CPU per overheard datagram`,
      `  idle probes (first in a fresh process, then warm): ${idleProbe?.runs?.map((r: any) => `${r.elapsedMs.toFixed(1)} ms (cpu ${r.cpu.totalMs.toFixed(1)} ms)`).join(', ')}`,
      `  probe under a 2 s blast (${blasted.sent} datagrams, ${(blasted.sent / blasted.elapsedMs).toFixed(0)}/ms): ` +
        `${underLoad.runs.map((r: any) => `${r.elapsedMs.toFixed(1)} ms (cpu ${r.cpu.totalMs.toFixed(1)} ms)`).join(', ')}; last receiver ${JSON.stringify(underLoad.result.receiverStats)}`,
      `  sink socket received ${sinkDone.count} datagrams in all`
    ].join('\n'))
  })

  it('reports address changes in the namespace through netlink', async () => {
    const watch = new Proc(NS.a, 'watch', { debounceMs: 100 })
    await watch.ready()
    sh('ip', '-n', NS.a, 'addr', 'add', '198.18.200.77/32', 'dev', 'lo')
    const change = await watch.waitFor(l => l.event === 'change' && l.addresses.includes('lo 198.18.200.77/32'))
    expect(change.change.kinds).toContain('address')
    sh('ip', '-n', NS.a, 'addr', 'del', '198.18.200.77/32', 'dev', 'lo')
    await watch.waitFor(l => l.event === 'change' && !l.addresses.includes('lo 198.18.200.77/32'))
    await watch.finish()
  })
})
