/**
 * What EngineClient holds of an engine, whichever kind it is: a process of this window's own
 * (engineProcess.ts) or the user's shared engine, which other windows, `pali mcp` and the CLI use too
 * (sharedEngineLink.ts). Both speak the same JSON-RPC protocol; they differ in how they start and end.
 */
import type { MessageConnection } from 'vscode-jsonrpc/node';
import type { SelfTestResult } from '../../protocol.js';

/**
 * Why an engine stopped: out of memory (its own report on stderr), killed (SIGKILL: the system's OOM
 * killer or a person), stopped on purpose by someone else (`pali stop` on a shared engine), or another crash.
 */
export type ExitCause = 'out-of-memory' | 'killed' | 'stopped' | 'crashed';

export type ExitListener = (code: number | null, signal: NodeJS.Signals | null, cause: ExitCause) => void;

/** What V8 and ONNX Runtime print (to the engine's stderr, or the shared engine's log) when an allocation fails. */
export const OUT_OF_MEMORY = /heap out of memory|Allocation failed|std::bad_alloc|Failed to allocate memory/i;

export interface EngineLink {
  /** `own`: this window's child process; `shared`: the user's shared engine. */
  readonly kind: 'own' | 'shared';
  readonly connection: MessageConnection;
  readonly pid: number | undefined;
  readonly selfTest: SelfTestResult;
  /** The process has exited or the connection has closed. */
  readonly gone: boolean;
  /** Set by kill(): this window let go of it on purpose (a restart, new settings), not lost. */
  readonly stoppedOnPurpose: boolean;
  /** Called once when the engine ends under this window (not after kill()). */
  onExit(listener: ExitListener): void;
  /** Streamed text pieces of the request that carries `streamId`, until the returned function is called. */
  onTextPieces(streamId: string, listener: (piece: string) => void): () => void;
  /** The engine's progress lines (a model loading, the VQ-VAE downloading), until the returned function is called. */
  onProgress(listener: (message: string) => void): () => void;
  /** A shared engine unloaded its model after keepAlive minutes without a request. */
  onModelUnloaded(listener: (why: string) => void): void;
  /** Why it stopped, once it has (or undefined if it is still running after `waitMs`). */
  whyStopped(waitMs: number): Promise<ExitCause | undefined>;
  /** Lets go of it: an own process is stopped, a shared engine only disconnected from. */
  kill(): void;
}
