import type { z } from 'zod'
import { isWgKey } from '../../shared/wg-dump.js'
import { parseIp } from '../../shared/ip.js'
import { PEER_NAME_RE } from '../inventory/peer-names.js'
import { PolicyError } from './policy-error.js'
import { policyFileSchema, type PolicyFileRule } from './policy-schema.js'
import { firstDuplicateKey } from '../../shared/json-duplicates.js'

/** One peer or every peer, as a policy names it. */
export type MemberRef =
  | { kind: 'all' }
  | { kind: 'key', key: string }
  | { kind: 'name', name: string }
  /** A tunnel address: the peer whose allowed IPs hold it. */
  | { kind: 'address', address: string }

/** One side of a rule: the union of the groups and members it lists. */
export interface PolicySide {
  /** As written, e.g. `admins` or `admins+laptop`. */
  label: string
  members: MemberRef[]
}

/**
 * `between`: a and b reach each other (b = a for `between: [X]`). `oneway`: a may open connections to b and gets
 * the replies; b may not open connections to a.
 */
export interface PolicyRule {
  /** Position in the file's `rules`, from 0. */
  index: number
  kind: 'between' | 'oneway'
  a: PolicySide
  b: PolicySide
}

export interface Policy {
  /** The file it came from, for messages. */
  source: string
  groups: ReadonlyMap<string, MemberRef[]>
  rules: PolicyRule[]
}

/**
 * Parse and check a policy file. `peerNames` is the hub's name store (public key -> name): a member that is not
 * a public key, a tunnel address or `*` must be one of these names. Throws a PolicyError of one line:
 * `policy <file>: <place>: <why> "<value>"`.
 */
export function parsePolicy (text: string, source: string, peerNames: ReadonlyMap<string, string>): Policy {
  const fail = (place: string, why: string): never => { throw new PolicyError(`policy ${source}: ${place === '' ? '' : `${place}: `}${why}`) }
  let json: unknown
  // A byte order mark (some Windows editors write one) is not part of the JSON.
  text = text.replace(/^\uFEFF/, '')
  try {
    json = JSON.parse(text)
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message)
    const where = m === null ? '' : ` at ${lineColumn(text, Number(m[1]))}`
    fail('', `not valid JSON${where}: ${(err as Error).message.replace(/ in JSON at position \d+.*$/, '').replace(/, ".*" is not valid JSON$/, '')}`)
  }
  // JSON.parse keeps the last of a repeated key: a policy with two `rules`, or a group defined twice, would silently
  // mean the second. Refused instead, naming the place.
  const dup = firstDuplicateKey(text)
  if (dup !== undefined) fail(formatPath(dup.path), `${JSON.stringify(dup.key)} appears twice (again at line ${dup.line}, column ${dup.column}); JSON would keep only the last`)
  const parsed = policyFileSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue
    if (issue.code === 'invalid_key') fail(formatPath(issue.path.slice(0, -1)), `${JSON.stringify(String(issue.path.at(-1)))} ${issue.issues[0]?.message ?? 'is not a valid name'}`)
    fail(formatPath(issue.path), issueMessage(issue, json))
  }
  const file = parsed.data!
  const names = new Set(peerNames.values())

  const member = (ref: string): MemberRef | undefined => {
    if (ref === '*') return { kind: 'all' }
    if (isWgKey(ref)) return { kind: 'key', key: ref }
    // A name starts with a letter and has no `.` or `:`, so it is never an address: test it first (cheap).
    if (PEER_NAME_RE.test(ref)) return names.has(ref) ? { kind: 'name', name: ref } : undefined
    try { return { kind: 'address', address: parseIp(ref).toString() } } catch { return undefined }
  }

  const groups = new Map<string, MemberRef[]>()
  for (const [group, refs] of Object.entries(file.groups)) {
    if (group === '*') fail(`groups`, '"*" is every peer and cannot be a group name')
    groups.set(group, refs.map((ref, i) => member(ref) ?? fail(`groups.${group}[${i}]`, `unknown member ${JSON.stringify(ref)} (not a known peer name, a public key or a tunnel address)`)))
  }

  const side = (refs: string[], place: string, first = 0): PolicySide => {
    const members: MemberRef[] = []
    refs.forEach((ref, j) => {
      const i = first + j
      const group = groups.get(ref)
      if (group !== undefined) {
        if (group.length === 0) fail(`${place}[${i}]`, `group ${JSON.stringify(ref)} has no members: the rule names nothing`)
        members.push(...group)
        return
      }
      members.push(member(ref) ?? fail(`${place}[${i}]`, `unknown group or member ${JSON.stringify(ref)}`))
    })
    return { label: refs.join('+'), members }
  }

  const rules = file.rules.map((rule: PolicyFileRule, index): PolicyRule => {
    const place = `rules[${index}]`
    if (rule.between !== undefined) {
      if (rule.from !== undefined || rule.to !== undefined) fail(place, '"between" cannot be combined with "from" or "to": write two rules')
      const a = side(rule.between.slice(0, 1), `${place}.between`)
      const b = rule.between.length === 2 ? side(rule.between.slice(1), `${place}.between`, 1) : a
      if (rule.between.length === 2) b.label = rule.between[1] ?? ''
      return { index, kind: 'between', a, b }
    }
    if (rule.from === undefined && rule.to === undefined) fail(place, 'names nothing: write {"between": [X, Y]} or {"from": [X], "to": [Y]}')
    if (rule.from === undefined) fail(place, '"to" without "from"')
    if (rule.to === undefined) fail(place, '"from" without "to"')
    return { index, kind: 'oneway', a: side(rule.from!, `${place}.from`), b: side(rule.to!, `${place}.to`) }
  })
  return { source, groups, rules }
}

/** `rules[1].to[0]` from zod's path. */
function formatPath (path: readonly PropertyKey[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`
  return out
}

function valueAt (json: unknown, path: readonly PropertyKey[]): unknown {
  let v = json
  for (const p of path) v = (v as Record<PropertyKey, unknown> | undefined)?.[p]
  return v
}

function issueMessage (issue: z.core.$ZodIssue, json: unknown): string {
  if (issue.code === 'unrecognized_keys') return `unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
  const value = valueAt(json, issue.path)
  if (value === undefined) return `missing: it ${issue.message}`
  const shown = JSON.stringify(value)
  return `${issue.message} (found ${shown.length > 60 ? shown.slice(0, 57) + '...' : shown})`
}

function lineColumn (text: string, position: number): string {
  const before = text.slice(0, position).split('\n')
  return `line ${before.length} column ${(before.at(-1)?.length ?? 0) + 1}`
}
