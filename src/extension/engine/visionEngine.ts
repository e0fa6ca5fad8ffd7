/**
 * What the features need of a backend: generate for an image (streaming pieces), load ahead of time, and
 * a state for the status bar. The local engine process (engineClient.ts) and a remote server
 * (remoteBackend.ts) both provide it; backendSwitch.ts routes to the one the settings choose.
 */
import type * as vscode from 'vscode';
import type { GenerateParams, GenerateResultMessage } from '../../protocol.js';

/** `idle`: the engine stopped after `paligemma.keepAlive` minutes without a request; the next one starts it. */
export type EngineState = 'off' | 'starting' | 'loading' | 'ready' | 'busy' | 'stopped' | 'idle';

/** A failure to show the user as it is: a bad image, no model, a crashed engine. Either backend throws it. */
export class EngineError extends Error {
  constructor(message: string, readonly kind: 'user' | 'crashed' | 'stopped' | 'no-model' | 'no-server' | 'cancelled' | 'internal') {
    super(message);
  }
}

/** What features send: the backend adds the per-request settings (image and memory limits, stream id). */
export type EngineGenerateParams = Omit<GenerateParams, 'streamId' | 'maxImagePixels' | 'memoryLimitMB' | 'vaePath'>;

export interface VisionEngine {
  readonly state: EngineState;
  readonly onDidChangeState: vscode.Event<void>;
  /** Loads (or, for a server, reaches) the model because a feature is about to need it. */
  warmUp(reason: string): void;
  generate(params: EngineGenerateParams, token: vscode.CancellationToken, onPiece?: (piece: string) => void): Promise<GenerateResultMessage>;
}
