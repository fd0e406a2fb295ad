/**
 * Child process of the registry load benchmark: one peer (one source address) hammering the registry.
 *
 *   registry-attacker.js <port> <source address> <connections> <full-fetch loops>
 *
 * Holds up to <connections> idle TCP connections (each one the server closes is opened again a second later) and
 * runs <full-fetch loops> loops of `GET /v1/table` (a full table each), retrying at once on 429. On { stop: true }
 * it answers with what it got: full tables served, 429s, other errors, connections held at the end.
 */
import { connect, type Socket } from 'node:net'
import { Agent, request } from 'node:http'

const port = Number(process.argv[2])
const from = process.argv[3] ?? '127.0.0.1'
const connections = Number(process.argv[4] ?? 10_000)
const fullLoops = Number(process.argv[5] ?? 16)
/** A connection the registry closed is opened again after this: a steady storm, not a busy loop. */
const RECONNECT_MS = 1000

let running = true
const held = new Set<Socket>()
let connectAttempts = 0
const counts = { full: 0, refused: 0, errors: 0, fullBytes: 0 }

function open (): void {
  if (!running) return
  connectAttempts++
  const s = connect({ host: '127.0.0.1', port, localAddress: from })
  s.on('connect', () => held.add(s))
  s.on('error', () => {})
  s.on('close', () => { held.delete(s); if (running) setTimeout(open, RECONNECT_MS) })
}

async function fullLoop (agent: Agent): Promise<void> {
  while (running) {
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/v1/table', localAddress: from, agent }, (res) => {
        let bytes = 0
        res.on('data', (c: Buffer) => { bytes += c.length })
        res.on('end', () => {
          if (res.statusCode === 200) { counts.full++; counts.fullBytes += bytes } else if (res.statusCode === 429) counts.refused++
          else counts.errors++
          resolve()
        })
      })
      req.on('error', () => { counts.errors++; setTimeout(resolve, 10) })
      req.end()
    })
  }
}

for (let i = 0; i < connections; i++) open()
const agent = new Agent({ keepAlive: true, maxSockets: fullLoops })
const loops = Array.from({ length: fullLoops }, async () => await fullLoop(agent))

process.on('message', (msg: { stop?: boolean }) => {
  if (msg.stop !== true) return
  const heldAtEnd = held.size
  running = false
  for (const s of held) s.destroy()
  agent.destroy()
  void Promise.race([Promise.all(loops), new Promise((resolve) => setTimeout(resolve, 2000))]).then(() => {
    process.send?.({ ...counts, heldAtEnd, connectAttempts }, () => process.exit(0))
  })
})
process.send?.({ ready: true })
