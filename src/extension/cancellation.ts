/** Bridges between VS Code's cancellation tokens and the AbortSignals of code that does not import vscode. */
import * as vscode from 'vscode';

/** An AbortSignal that aborts when `token` is cancelled; dispose it when done. */
export function signalOf(token: vscode.CancellationToken): { signal: AbortSignal } & vscode.Disposable {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  const listener = token.onCancellationRequested(() => controller.abort());
  return { signal: controller.signal, dispose: () => listener.dispose() };
}

/** A CancellationToken that is cancelled when `signal` aborts; dispose it when done. */
export function tokenOf(signal: AbortSignal): vscode.CancellationTokenSource {
  const source = new vscode.CancellationTokenSource();
  if (signal.aborted) source.cancel();
  else signal.addEventListener('abort', () => source.cancel(), { once: true });
  return source;
}
