/**
 * The backend the settings choose (paligemma.backend): the local engine process or a remote server. Every
 * feature talks to this, so switching needs no reload and each request goes where the settings say at the
 * moment it is made.
 */
import * as vscode from 'vscode';
import type { GenerateResultMessage } from '../../protocol.js';
import type { Settings } from '../config.js';
import type { EngineClient } from './engineClient.js';
import type { RemoteBackend } from './remoteBackend.js';
import type { EngineGenerateParams, EngineState, VisionEngine } from './visionEngine.js';

export class BackendSwitch implements VisionEngine, vscode.Disposable {
  private readonly stateChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeState = this.stateChanged.event;
  private readonly subscriptions: vscode.Disposable[];

  constructor(readonly local: EngineClient, readonly remote: RemoteBackend, private readonly settings: () => Settings) {
    this.subscriptions = [this.stateChanged, local.onDidChangeState(() => this.stateChanged.fire()), remote.onDidChangeState(() => this.stateChanged.fire())];
  }

  get active(): EngineClient | RemoteBackend {
    return this.settings().backend === 'remote' ? this.remote : this.local;
  }

  get state(): EngineState {
    return this.active.state;
  }

  warmUp(reason: string): void {
    this.active.warmUp(reason);
  }

  generate(params: EngineGenerateParams, token: vscode.CancellationToken, onPiece?: (piece: string) => void): Promise<GenerateResultMessage> {
    return this.active.generate(params, token, onPiece);
  }

  /** The choice changed: the status bar shows the other backend now. */
  changed(): void {
    this.stateChanged.fire();
  }

  dispose(): void {
    for (const subscription of this.subscriptions) subscription.dispose();
  }
}
