/**
 * A client for the OpenAI-compatible chat-completions API that both `pali serve` and vLLM speak: one user
 * message with the image as a data: URL and the raw PaliGemma task prompt as text. Streaming answers arrive
 * as server-sent events, parsed by eventsource-parser. Plain fetch: no vscode, no native modules, so the
 * extension host runs it and plain Node tests it against a real server.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface RemoteEndpoint {
  /** The server's base URL, with or without the trailing /v1. */
  url: string;
  apiKey?: string;
}

export interface ChatRequest {
  model: string;
  imageDataUrl: string;
  prompt: string;
  maxTokens: number;
  sampling?: { temperature: number; topP: number; seed: number };
  signal?: AbortSignal;
  onPiece?: (piece: string) => void;
}

export interface ChatResult {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens?: number;
  completionTokens?: number;
  /** From sending the request to the first piece of text (or the whole answer when not streaming). */
  firstTokenMs: number;
  totalMs: number;
}

/** What went wrong, in words a user can act on; `status` is the HTTP status when the server answered. */
export class RemoteError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'RemoteError';
  }
}

/** `http://host:8000`, `http://host:8000/`, `http://host:8000/v1` all mean the same API root. */
export function apiRoot(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RemoteError(`"${url}" is not a URL: a server's address looks like http://gpu-box:8000`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new RemoteError(`"${url}" is not an http(s) URL`);
  const base = parsed.href.replace(/\/+$/, '');
  return base.endsWith('/v1') ? base : `${base}/v1`;
}

function headers(endpoint: RemoteEndpoint): Record<string, string> {
  return { 'content-type': 'application/json', ...(endpoint.apiKey ? { authorization: `Bearer ${endpoint.apiKey}` } : {}) };
}

async function send(endpoint: RemoteEndpoint, route: string, init: RequestInit): Promise<Response> {
  const root = apiRoot(endpoint.url);
  let response: Response;
  try {
    response = await fetch(`${root}${route}`, { ...init, headers: headers(endpoint) });
  } catch (error) {
    if (init.signal?.aborted) throw init.signal.reason ?? error;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new RemoteError(`cannot reach ${root}: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
  }
  if (response.ok) return response;
  const body = await response.text().catch(() => '');
  let message = body.slice(0, 300);
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string; message?: string; detail?: string };
    message = (typeof parsed.error === 'string' ? parsed.error : parsed.error?.message) ?? parsed.message ?? parsed.detail ?? message;
  } catch {
    // not JSON: the body's start says enough
  }
  if (response.status === 401 || response.status === 403) {
    // Each client says how its user sets the key (a VS Code command, an environment variable).
    throw new RemoteError(`${root} refused the API key (${response.status})`, response.status);
  }
  throw new RemoteError(`${root} answered ${response.status}: ${message || response.statusText}`, response.status);
}

/** The models the server offers (vLLM serves one; so does `pali serve`). */
export async function listModels(endpoint: RemoteEndpoint, signal?: AbortSignal): Promise<string[]> {
  const response = await send(endpoint, '/models', { method: 'GET', signal });
  const body = (await response.json()) as { data?: { id?: unknown }[] };
  const ids = (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
  if (!ids.length) throw new RemoteError(`${apiRoot(endpoint.url)}/models lists no model`);
  return ids;
}

interface ChunkChoice {
  delta?: { content?: string | null };
  message?: { content?: string | null };
  finish_reason?: string | null;
}
interface Completion {
  choices?: ChunkChoice[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

export async function chatCompletion(endpoint: RemoteEndpoint, request: ChatRequest): Promise<ChatResult> {
  const started = performance.now();
  const stream = request.onPiece !== undefined;
  const body = {
    model: request.model,
    messages: [{
      role: 'user',
      content: [
        { type: 'image_url', image_url: { url: request.imageDataUrl } },
        { type: 'text', text: request.prompt },
      ],
    }],
    max_tokens: request.maxTokens,
    temperature: request.sampling?.temperature ?? 0,
    ...(request.sampling ? { top_p: request.sampling.topP, seed: request.sampling.seed } : {}),
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  };
  const response = await send(endpoint, '/chat/completions', { method: 'POST', body: JSON.stringify(body), signal: request.signal });
  if (!stream) {
    const completion = (await response.json()) as Completion;
    const choice = completion.choices?.[0];
    if (!choice) throw new RemoteError(`the server's answer has no choices: ${JSON.stringify(completion).slice(0, 200)}`);
    const totalMs = performance.now() - started;
    return {
      text: choice.message?.content ?? '',
      finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
      promptTokens: completion.usage?.prompt_tokens,
      completionTokens: completion.usage?.completion_tokens,
      firstTokenMs: totalMs,
      totalMs,
    };
  }

  let text = '';
  let finishReason: ChatResult['finishReason'] = 'stop';
  let usage: Completion['usage'];
  let firstTokenMs: number | undefined;
  let failure: Error | undefined;
  const parser = createParser({
    onEvent: (event: EventSourceMessage) => {
      if (event.data === '[DONE]' || failure) return;
      let chunk: Completion;
      try {
        chunk = JSON.parse(event.data) as Completion;
      } catch {
        failure = new RemoteError(`the server sent an event that is not JSON: ${event.data.slice(0, 100)}`);
        return;
      }
      if (chunk.error) {
        failure = new RemoteError(`the server stopped: ${chunk.error.message ?? 'unknown error'}`);
        return;
      }
      const choice = chunk.choices?.[0];
      const piece = choice?.delta?.content;
      if (piece) {
        firstTokenMs ??= performance.now() - started;
        text += piece;
        request.onPiece!(piece);
      }
      if (choice?.finish_reason === 'length') finishReason = 'length';
      if (chunk.usage) usage = chunk.usage;
    },
  });
  const decoder = new TextDecoder();
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    parser.feed(decoder.decode(bytes, { stream: true }));
    if (failure) throw failure;
  }
  const totalMs = performance.now() - started;
  return { text, finishReason, promptTokens: usage?.prompt_tokens, completionTokens: usage?.completion_tokens, firstTokenMs: firstTokenMs ?? totalMs, totalMs };
}
