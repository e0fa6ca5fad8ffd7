/**
 * Errors that the engine, the CLI and the extension share (pure: no native modules, no vscode).
 *
 * An error the user can act on: what failed and what to do. The CLI prints its message as one line and
 * exits 1; the engine server returns it as a JSON-RPC error. Anything else that escapes is a bug.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  /** The engine unloaded its model on the way (over its memory limit): a client must not count it as loaded. */
  readonly modelUnloaded: boolean;
  constructor(message: string, options?: { cause?: unknown; modelUnloaded?: boolean }) {
    super(message, options);
    this.modelUnloaded = options?.modelUnloaded === true;
  }
}

export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError;
}

/** A readable summary of any thrown value, for logs and for wrapping library errors. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** What a cancelled request rejects with (the server answers it as cancelled, the CLI exits 130). */
export function abortError(message = 'the request was cancelled'): Error {
  const error = new Error(message);
  error.name = 'AbortError';
  return error;
}
