import * as z from 'zod'

/**
 * The policy file as written (docs/policy.md), checked by shape only: which names a reference means (a group, a
 * peer name, a key, an address) is decided by parsePolicy, which knows the groups and the peer names.
 */

/** A group's name: a letter, then letters, digits, `_`, `-` or `.`; at most 64 characters. `*` is reserved. */
export const GROUP_NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/

/** Limits that keep a policy file (and the relay's ruleset built from it) bounded. */
export const POLICY_LIMITS = {
  groups: 1024,
  membersPerGroup: 65_536,
  rules: 4096,
  refsPerSide: 1024,
  refLength: 256
} as const

const refSchema = z.string({ error: 'must be a string: a group, a peer name, a public key, a tunnel address or "*"' })
  .min(1, { error: 'must not be empty' })
  .max(POLICY_LIMITS.refLength, { error: `longer than ${POLICY_LIMITS.refLength} characters` })

const sideSchema = z.array(refSchema, { error: 'must be a list of groups or members' })
  .min(1, { error: 'names nothing: give at least one group or member' })
  .max(POLICY_LIMITS.refsPerSide, { error: `more than ${POLICY_LIMITS.refsPerSide} entries` })

export const ruleSchema = z.strictObject({
  between: sideSchema.max(2, { error: 'takes one or two groups or members: [X] (X among themselves) or [X, Y]' }).optional(),
  from: sideSchema.optional(),
  to: sideSchema.optional(),
  comment: z.string().max(1024).optional()
}, { error: 'must be an object: {"between": [X, Y]} or {"from": [X], "to": [Y]}' })

export const policyFileSchema = z.strictObject({
  groups: z.record(
    z.string().regex(GROUP_NAME_RE, { error: 'is not a group name (a letter, then letters, digits, "_", "-" or "."; at most 64)' }),
    z.array(refSchema, { error: 'must be a list of members' }).max(POLICY_LIMITS.membersPerGroup)
  ).default({}),
  rules: z.array(ruleSchema, { error: 'must be a list of rules' }).max(POLICY_LIMITS.rules),
  comment: z.string().max(4096).optional()
}, { error: 'must be an object with "rules" (and optionally "groups")' })

export type PolicyFile = z.infer<typeof policyFileSchema>
export type PolicyFileRule = z.infer<typeof ruleSchema>
