/**
 * The engine's JSON-RPC endpoint (vscode-jsonrpc over Node IPC or stdio, or a shared engine's socket). Cancellation arrives as
 * $/cancelRequest and becomes an AbortSignal checked between decode steps. User errors travel as
 * USER_ERROR_CODE with their message; anything else is an internal error.
 */
import {
  CancellationToken, ErrorCodes, IPCMessageReader, IPCMessageWriter, ResponseError, StreamMessageReader, StreamMessageWriter,
  createMessageConnection, type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  GenerateRequest, LoadModelRequest, type LoadModelParams, ProgressNotification, REQUEST_CANCELLED_CODE, SegmentAnswerRequest, SelfTestRequest, StatusRequest, TextPieceNotification,
  USER_ERROR_CODE, type UserErrorData,
} from '../../protocol.js';
import { describeError, isUserError } from '../../common/errors.js';
import { runtimeKind } from '../runtime/onnxRuntime.js';
import { runSelfTest } from '../runtime/selfTest.js';
import { EngineService } from './engineService.js';
import { faultInjected } from '../testHooks.js';

export function toSignal(token: CancellationToken): AbortSignal {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}

function toResponseError(error: unknown): ResponseError<UserErrorData | void> {
  if (error instanceof Error && error.name === 'AbortError') return new ResponseError(REQUEST_CANCELLED_CODE, 'cancelled');
  if (isUserError(error)) return new ResponseError(USER_ERROR_CODE, error.message, error.modelUnloaded ? { modelUnloaded: true } : undefined);
  return new ResponseError(ErrorCodes.InternalError, describeError(error));
}

async function answer<T>(work: () => Promise<T>): Promise<T | ResponseError<UserErrorData | void>> {
  try {
    return await work();
  } catch (error) {
    return toResponseError(error);
  }
}

/** The injected faults of a model load on onnxruntime-node (testHooks.ts). */
function abortIfFaultInjected(): void {
  if (runtimeKind() !== 'native') return;
  if (faultInjected('abort-native-load')) process.abort();
  if (faultInjected('kill-native-load')) process.kill(process.pid, 'SIGKILL');
}

/** How a transport's connection meets the service: its cancellation, and for a shared engine its client's model. */
export interface ConnectionHooks {
  /** The signal a request runs under: its cancellation token, and the connection's end for a shared engine. */
  signal(token: CancellationToken): AbortSignal;
  /** A shared engine: each client's requests run on the model that client chose (EngineService swaps). */
  perClientModel?: boolean;
  /** A shared engine: a request's keepAliveMinutes, which holds from then on. */
  onKeepAlive?: (minutes: number) => void;
}

/** The engine's requests on one JSON-RPC connection. */
export function serveRequests(connection: MessageConnection, service: EngineService, hooks: ConnectionHooks = { signal: toSignal }): void {
  // A notification to a client that has gone (a shared engine's client that pressed Ctrl+C) fails to write:
  // nobody is left to tell, and an unhandled rejection would end the engine for every other client.
  // (vscode-jsonrpc throws at once on a closed connection, and rejects when a write fails.)
  const notify = (send: () => Promise<void>) => {
    try {
      void send().catch(() => undefined);
    } catch {
      // Closed: the client has gone.
    }
  };
  const onProgress = (message: string) => notify(() => connection.sendNotification(ProgressNotification, { message }));
  let chosen: LoadModelParams | undefined;
  connection.onRequest(LoadModelRequest, ({ keepAliveMinutes, ...params }, token) => {
    abortIfFaultInjected();
    if (keepAliveMinutes !== undefined) hooks.onKeepAlive?.(keepAliveMinutes);
    if (hooks.perClientModel) chosen = params;
    return answer(() => service.loadModel(params, hooks.signal(token), { onProgress }));
  });
  connection.onRequest(GenerateRequest, ({ streamId, keepAliveMinutes, ...params }, token) => {
    if (keepAliveMinutes !== undefined) hooks.onKeepAlive?.(keepAliveMinutes);
    // The client names the stream its pieces belong to; they go back with that name.
    const onText = streamId ? (piece: string) => notify(() => connection.sendNotification(TextPieceNotification, { streamId, piece })) : undefined;
    return answer(() => service.generate(params, hooks.signal(token), { onText, onProgress }, chosen));
  });
  connection.onRequest(SegmentAnswerRequest, (params, token) => answer(() => service.segmentAnswer(params, hooks.signal(token), { onProgress })));
  connection.onRequest(StatusRequest, () => service.status());
  connection.onRequest(SelfTestRequest, () => answer(runSelfTest));
}

/** The per-window engine the extension starts: one client, over Node IPC or stdio; it exits with its client. */
export function startServer(transport: 'ipc' | 'stdio', options: { cacheRoot?: string } = {}): MessageConnection {
  const connection = transport === 'ipc'
    ? createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process))
    : createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
  const service = new EngineService(options);
  serveRequests(connection, service);
  connection.onClose(() => {
    void service.unload().finally(() => process.exit(0));
  });
  connection.listen();
  return connection;
}
