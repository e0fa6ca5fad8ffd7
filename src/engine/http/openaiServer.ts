/**
 * `pali serve --model DIR [--host H] [--port N] [--api-key KEY]`: the OpenAI-compatible HTTP API that vLLM
 * serves, on hono: POST /v1/chat/completions (one user message with an image_url part as a data: URL and
 * a text part holding the PaliGemma task prompt; streaming as server-sent events), GET /v1/models and
 * GET /health. Requests go through the same EngineService (and its fair queue) as the extension's engine.
 */
import { randomUUID } from 'node:crypto';
import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { streamSSE } from 'hono/streaming';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { DeviceChoice, DtypeChoice } from '../../protocol.js';
import { fetchImage } from '../../common/fetchImage.js';
import { describeError, isUserError } from '../../common/errors.js';
import { EngineService, type GenerateCall } from '../service/engineService.js';
import { browserGuard } from './browserGuard.js';

export interface OpenAiServerOptions {
  modelDir: string;
  /** The name clients pass as `model`, and /v1/models lists. */
  modelName: string;
  host: string;
  port: number;
  apiKey?: string;
  /** Browser origins that may use the server besides loopback pages (`--allow-origin`; `*` for any). */
  allowedOrigins?: string[];
  maxBodyBytes: number;
  /** Fetch http(s) image_url parts (with common/fetchImage.ts's limits); only data: URLs otherwise. */
  allowRemoteImages?: boolean;
  /** Requests decoded together (generate/batchDecoder.ts); 1 runs them one after another. */
  maxBatch?: number;
  cacheRoot?: string;
  onListening?: (url: string) => void;
  /** One line per request that reached the engine: how it ended (an operator's access log). */
  log?: (line: string) => void;
}

type ErrorType = 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'server_error';

/** OpenAI's error shape. */
function openAiError(c: Context, status: ContentfulStatusCode, message: string, type: ErrorType = 'invalid_request_error', param: string | null = null) {
  return c.json({ error: { message, type, param, code: null } }, status);
}

class RequestError extends Error {
  constructor(message: string, readonly param: string | null = null) {
    super(message);
  }
}

interface ChatRequest {
  params: GenerateCall;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with the token counts, as OpenAI sends it. */
  includeUsage: boolean;
  /** An http(s) image to fetch before generating, when remote images are allowed. */
  remoteImage?: string;
}

/** The one user message's image (a data: URL) and task prompt, and the sampling parameters. */
function parseChatRequest(body: unknown, allowRemoteImages: boolean): ChatRequest {
  if (typeof body !== 'object' || body === null) throw new RequestError('the body must be a JSON object');
  const request = body as Record<string, unknown>;
  const messages = request.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new RequestError('messages must be a non-empty array', 'messages');
  const users = messages.filter((m) => (m as { role?: unknown })?.role === 'user');
  if (users.length !== 1) throw new RequestError('send exactly one user message: an image_url part and a text part with the task prompt', 'messages');
  const content = (users[0] as { content?: unknown }).content;
  if (!Array.isArray(content)) throw new RequestError('the user message\'s content must be an array of parts', 'messages');
  const imageParts = content.filter((p) => (p as { type?: unknown })?.type === 'image_url');
  const textParts = content.filter((p) => (p as { type?: unknown })?.type === 'text');
  if (imageParts.length !== 1) throw new RequestError('the user message needs exactly one image_url part', 'messages');
  if (textParts.length !== 1) throw new RequestError('the user message needs one text part: the PaliGemma task prompt, such as "caption en"', 'messages');
  const url = (imageParts[0] as { image_url?: { url?: unknown } }).image_url?.url;
  const dataUrl = typeof url === 'string' ? /^data:(image\/[\w.+-]+);base64,([A-Za-z0-9+/=\s]+)$/.exec(url) : null;
  const remote = typeof url === 'string' && /^https?:\/\//i.test(url) ? url : undefined;
  if (!dataUrl && !(remote && allowRemoteImages)) {
    throw new RequestError(`image_url.url must be a data: URL of a base64 image${remote ? ' (http(s) images are fetched only with --allow-remote-images)' : ''}`, 'messages');
  }
  const prompt = (textParts[0] as { text?: unknown }).text;
  if (typeof prompt !== 'string') throw new RequestError('the text part must hold a string', 'messages');
  const number = (name: string, fallback: number) => {
    const value = request[name];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new RequestError(`${name} must be a number`, name);
    return value;
  };
  const maxTokens = number('max_tokens', number('max_completion_tokens', 64));
  const temperature = number('temperature', 0);
  const topP = number('top_p', 1);
  const seed = number('seed', 0);
  return {
    remoteImage: dataUrl ? undefined : remote,
    params: {
      image: dataUrl ? { base64: dataUrl[2]!.replace(/\s/g, ''), name: `image.${dataUrl[1]!.split('/')[1]}` } : { base64: '', name: remote! },
      task: { prompt },
      maxNewTokens: maxTokens,
      sampling: temperature > 0 ? { temperature, topP, topK: 0, seed } : undefined,
    },
    stream: request.stream === true,
    includeUsage: (request.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true,
  };
}

function usageOf(result: { promptTokens: number; generatedIds: number[] }) {
  return { prompt_tokens: result.promptTokens, completion_tokens: result.generatedIds.length, total_tokens: result.promptTokens + result.generatedIds.length };
}

export function createOpenAiApp(service: EngineService, options: OpenAiServerOptions): Hono {
  const app = new Hono();
  const created = Math.floor(Date.now() / 1000);
  const logOutcome = (id: string, result: { generatedIds: number[]; finishReason: string }) => options.log?.(`pali: ${id}: ${result.generatedIds.length} tokens (${result.finishReason})`);
  const onProgress = (message: string) => options.log?.(`pali: ${message}`);
  const logFailure = (id: string, error: unknown, streamedPieces?: number) => {
    if (error instanceof Error && error.name === 'AbortError') {
      options.log?.(`pali: ${id}: the client went away${streamedPieces === undefined ? '' : ` after ${streamedPieces} streamed pieces`}; its decoding stopped`);
    } else {
      options.log?.(`pali: ${id}: failed: ${describeError(error).split('\n')[0]}`);
    }
  };
  const guard = browserGuard(options.host, options.allowedOrigins ?? []);
  app.use('*', async (c, next) => {
    const origin = c.req.header('origin');
    const refusal = guard.refusal(c.req.header('host'), origin);
    if (refusal) return openAiError(c, 403, refusal, 'permission_error');
    if (origin === undefined) return next();
    // An allowed page may read the answer (CORS), and its preflight is answered here.
    const cors = {
      'access-control-allow-origin': origin,
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      vary: 'Origin',
    };
    if (c.req.method === 'OPTIONS') return c.body(null, 204, cors);
    await next();
    for (const [name, value] of Object.entries(cors)) c.res.headers.set(name, value);
  });
  app.get('/health', (c) => c.json({ status: 'ok', model: options.modelName }));
  app.use('/v1/*', async (c, next) => {
    if (options.apiKey && c.req.header('authorization') !== `Bearer ${options.apiKey}`) {
      return openAiError(c, 401, 'missing or wrong API key: send Authorization: Bearer KEY', 'authentication_error');
    }
    await next();
  });
  app.get('/v1/models', (c) => c.json({ object: 'list', data: [{ id: options.modelName, object: 'model', created, owned_by: 'pali' }] }));
  app.post(
    '/v1/chat/completions',
    bodyLimit({ maxSize: options.maxBodyBytes, onError: (c) => openAiError(c, 413, `the request body is larger than ${options.maxBodyBytes} bytes`) }),
    async (c) => {
      let request: ChatRequest;
      try {
        request = parseChatRequest(await c.req.json(), options.allowRemoteImages === true);
      } catch (error) {
        return openAiError(c, 400, error instanceof RequestError ? error.message : 'the body is not valid JSON', 'invalid_request_error', error instanceof RequestError ? error.param : null);
      }
      if (request.remoteImage) {
        try {
          const bytes = await fetchImage(request.remoteImage, { signal: c.req.raw.signal });
          request.params.image = { base64: Buffer.from(bytes).toString('base64'), name: request.remoteImage };
        } catch (error) {
          return openAiError(c, 400, describeError(error), 'invalid_request_error', 'messages');
        }
      }
      const id = `chatcmpl-${randomUUID()}`;
      const chunk = (delta: Record<string, string>, finish: string | null) =>
        JSON.stringify({ id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: options.modelName, choices: [{ index: 0, delta, finish_reason: finish }] });
      const controller = new AbortController();
      c.req.raw.signal.addEventListener('abort', () => controller.abort());
      if (request.stream) {
        return streamSSE(c, async (sse) => {
          const sent: Promise<void>[] = [sse.writeSSE({ data: chunk({ role: 'assistant', content: '' }, null) })];
          const onText = (piece: string) => void sent.push(sse.writeSSE({ data: chunk({ content: piece }, null) }));
          sse.onAbort(() => controller.abort());
          try {
            const result = await service.generate(request.params, controller.signal, { onText, onProgress });
            logOutcome(id, result);
            await Promise.all(sent);
            await sse.writeSSE({ data: chunk({}, result.finishReason) });
            if (request.includeUsage) {
              await sse.writeSSE({ data: JSON.stringify({ id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: options.modelName, choices: [], usage: usageOf(result) }) });
            }
          } catch (error) {
            logFailure(id, error, sent.length - 1);
            await sse.writeSSE({ data: JSON.stringify({ error: { message: describeError(error), type: isUserError(error) ? 'invalid_request_error' : 'server_error', param: null, code: null } }) });
          }
          await sse.writeSSE({ data: '[DONE]' });
        });
      }
      try {
        const result = await service.generate(request.params, controller.signal, { onProgress });
        logOutcome(id, result);
        return c.json({
          id,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: options.modelName,
          choices: [{ index: 0, message: { role: 'assistant', content: result.text }, finish_reason: result.finishReason }],
          usage: usageOf(result),
        });
      } catch (error) {
        logFailure(id, error);
        if (isUserError(error)) return openAiError(c, 400, error.message);
        return openAiError(c, 500, describeError(error), 'server_error');
      }
    },
  );
  return app;
}

/** Loads the model, serves until SIGTERM or SIGINT, then lets in-flight requests finish and exits. */
export async function runOpenAiServer(options: OpenAiServerOptions, dtype: DtypeChoice, device: DeviceChoice, log: (line: string) => void): Promise<void> {
  const service = new EngineService({ cacheRoot: options.cacheRoot, maxBatch: options.maxBatch });
  await service.loadModel({ modelDir: options.modelDir, dtype, device }, undefined, { onProgress: (message) => log(`pali: ${message}`) });
  const app = createOpenAiApp(service, { log, ...options });
  const server = serve({ fetch: app.fetch, hostname: options.host, port: options.port }, (info) => options.onListening?.(`http://${options.host}:${info.port}`));
  await new Promise<void>((resolve) => {
    const stop = () => {
      log('pali: stopping: finishing the requests in flight, refusing new ones');
      // close() stops accepting connections and resolves once the open ones have ended.
      server.close(() => resolve());
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await service.unload();
}
