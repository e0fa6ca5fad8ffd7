/**
 * A client's side of an engine's notifications on one connection (streamed text by stream id, progress,
 * a shared engine's events), handed to whoever listens for them now: the extension's engine links and
 * `pali mcp --shared` route them the same way.
 */
import type { MessageConnection } from 'vscode-jsonrpc/node';
import { EngineEventNotification, ProgressNotification, TextPieceNotification } from '../../protocol.js';

export class EngineNotifications {
  private readonly pieceListeners = new Map<string, (piece: string) => void>();
  private readonly progressListeners = new Set<(message: string) => void>();
  private readonly unloadedListeners: ((why: string) => void)[] = [];
  /** Set when a shared engine said it is stopping on purpose. */
  stopping: string | undefined;

  constructor(connection: MessageConnection) {
    connection.onNotification(TextPieceNotification, ({ streamId, piece }) => this.pieceListeners.get(streamId)?.(piece));
    connection.onNotification(ProgressNotification, ({ message }) => this.progressListeners.forEach((listener) => listener(message)));
    connection.onNotification(EngineEventNotification, ({ event, why }) => {
      if (event === 'stopping') this.stopping = why;
      else this.unloadedListeners.forEach((listener) => listener(why));
    });
  }

  onTextPieces(streamId: string, listener: (piece: string) => void): () => void {
    this.pieceListeners.set(streamId, listener);
    return () => this.pieceListeners.delete(streamId);
  }

  onProgress(listener: (message: string) => void): () => void {
    this.progressListeners.add(listener);
    return () => this.progressListeners.delete(listener);
  }

  onModelUnloaded(listener: (why: string) => void): void {
    this.unloadedListeners.push(listener);
  }
}
