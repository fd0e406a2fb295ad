import { visit } from 'jsonc-parser'

export interface DuplicateKey {
  /** Where the object holding it is, as keys and indexes from the top (e.g. ['groups']). */
  path: Array<string | number>
  key: string
  /** 1-based line and column of the second occurrence. */
  line: number
  column: number
}

/**
 * The first key that appears twice in one object of a JSON text, or undefined. `JSON.parse` keeps the last value of
 * such a key without a word, so a file that says two things (a policy with two `rules`, a group defined twice) would
 * silently mean the second. For a text `JSON.parse` accepts (jsonc-parser reads it the same way).
 */
export function firstDuplicateKey (text: string): DuplicateKey | undefined {
  const seen: Array<Set<string>> = []
  let found: DuplicateKey | undefined
  visit(text, {
    onObjectBegin: () => { seen.push(new Set()) },
    onObjectEnd: () => { seen.pop() },
    onObjectProperty: (key, _offset, _length, startLine, startCharacter, pathSupplier) => {
      const keys = seen[seen.length - 1]
      if (found !== undefined || keys === undefined) return
      if (keys.has(key)) found = { path: pathSupplier(), key, line: startLine + 1, column: startCharacter + 1 }
      keys.add(key)
    }
  })
  return found
}
