import { EXIT_USAGE, WgnatError } from '../../shared/errors.js'

/** A policy file that cannot be used: one line naming the file, the place in it and the bad value. Exit 64. */
export class PolicyError extends WgnatError {
  constructor (message: string) { super(message, EXIT_USAGE) }
}
