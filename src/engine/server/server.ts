/**
 * The engine's JSON-RPC endpoint (vscode-jsonrpc over Node IPC or stdio). Cancellation arrives as
 * $/cancelRequest and becomes an AbortSignal checked between decode steps. User errors travel as
 * USER_ERROR_CODE with their message; anything else is an internal error.
 */
import {
  CancellationToken, ErrorCodes, IPCMessageReader, IPCMessageWriter, ResponseError, StreamMessageReader, StreamMessageWriter,
  createMessageConnection, type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  GenerateRequest, LoadModelRequest, ProgressNotification, REQUEST_CANCELLED_CODE, SegmentAnswerRequest, SelfTestRequest, StatusRequest, TextPieceNotification,
  USER_ERROR_CODE,
} from '../../protocol.js';
import { describeError, isUserError } from '../../common/errors.js';
import { runtimeKind } from '../runtime/onnxRuntime.js';
import { runSelfTest } from '../runtime/selfTest.js';
import { EngineService } from './engineService.js';

function toSignal(token: CancellationToken): AbortSignal {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}

function toResponseError(error: unknown): ResponseError<void> {
  if (error instanceof Error && error.name === 'AbortError') return new ResponseError(REQUEST_CANCELLED_CODE, 'cancelled');
  if (isUserError(error)) return new ResponseError(USER_ERROR_CODE, error.message);
  return new ResponseError(ErrorCodes.InternalError, describeError(error));
}

async function answer<T>(work: () => Promise<T>): Promise<T | ResponseError<void>> {
  try {
    return await work();
  } catch (error) {
    return toResponseError(error);
  }
}

/**
 * Fault injection for the end-to-end test of the runtime fallback, since no Electron runs on our machines:
 * with PALI_FAULT=abort-native-load an engine on onnxruntime-node dies loading a model, as
 * microsoft/onnxruntime#29763 reports under Electron. Nothing sets it outside that test.
 */
function abortIfFaultInjected(): void {
  if (process.env.PALI_FAULT === 'abort-native-load' && runtimeKind() === 'native') process.abort();
}

export function startServer(transport: 'ipc' | 'stdio', options: { cacheRoot?: string } = {}): MessageConnection {
  const connection = transport === 'ipc'
    ? createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process))
    : createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
  const service = new EngineService(options);
  const onProgress = (message: string) => void connection.sendNotification(ProgressNotification, { message });
  connection.onRequest(LoadModelRequest, (params, token) => {
    abortIfFaultInjected();
    return answer(() => service.loadModel(params, toSignal(token), { onProgress }));
  });
  connection.onRequest(GenerateRequest, ({ streamId, ...params }, token) => {
    // The client names the stream its pieces belong to; they go back with that name.
    const onText = streamId ? (piece: string) => void connection.sendNotification(TextPieceNotification, { streamId, piece }) : undefined;
    return answer(() => service.generate(params, toSignal(token), { onText, onProgress }));
  });
  connection.onRequest(SegmentAnswerRequest, (params, token) => answer(() => service.segmentAnswer(params, toSignal(token), { onProgress })));
  connection.onRequest(StatusRequest, () => service.status());
  connection.onRequest(SelfTestRequest, () => answer(runSelfTest));
  connection.onClose(() => {
    void service.unload().finally(() => process.exit(0));
  });
  connection.listen();
  return connection;
}
