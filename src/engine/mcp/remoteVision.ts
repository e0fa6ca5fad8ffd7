/**
 * `pali mcp --remote URL`: the image tools answer from a team's `pali serve` or vLLM server instead of a
 * model loaded here, as the extension's remote backend does, so that an MCP client on a laptop needs no 3B
 * model in memory. The same request as the extension's (common/remote); boxes in image pixels from the
 * answer's <loc> tokens. Failures are one line that says what to do.
 */
import * as fs from 'node:fs';
import { boxesForTask, type DetectedBox } from '../../common/locTokens.js';
import type { TaskRequest } from '../../common/prompts.js';
import { apiRoot, chatCompletion, listModels, RemoteError, type RemoteEndpoint } from '../../common/remote/chatClient.js';
import { remoteTask } from '../../common/remote/remoteTask.js';
import type { ImageSource } from '../../protocol.js';
import { isUserError, UserError } from '../../common/errors.js';

export interface VisionAnswer {
  text: string;
  boxes?: DetectedBox[];
  imageWidth: number;
  imageHeight: number;
}

/** Where `pali mcp`'s image tools get their answers: a local model, the shared engine or a server. */
export interface Vision {
  generate(image: ImageSource, task: TaskRequest, maxNewTokens: number, signal: AbortSignal, onPiece: (piece: string) => void, onProgress: (message: string) => void): Promise<VisionAnswer>;
  close(): Promise<void>;
}

export class RemoteVision implements Vision {
  /** The model the server serves, asked once (again after a failure: the server may come up). */
  private model: Promise<string> | undefined;

  constructor(private readonly endpoint: RemoteEndpoint) {
    // A malformed address is said at start, not at the first tool call.
    try {
      apiRoot(endpoint.url);
    } catch (error) {
      throw new UserError(`--remote: ${(error as Error).message}`);
    }
  }

  async generate(image: ImageSource, task: TaskRequest, maxTokens: number, signal: AbortSignal, onPiece: (piece: string) => void): Promise<VisionAnswer> {
    const bytes = 'path' in image ? fs.readFileSync(image.path) : Buffer.from(image.base64, 'base64');
    try {
      const { image: payload, prompt } = remoteTask(bytes, 'path' in image ? image.path : image.name, task);
      this.model ??= listModels(this.endpoint, signal).then(([first]) => first!, (error: unknown) => {
        this.model = undefined;
        throw error;
      });
      const result = await chatCompletion(this.endpoint, { model: await this.model, imageDataUrl: payload.dataUrl, prompt, maxTokens, signal, onPiece });
      return { text: result.text, boxes: boxesForTask(task, result.text, payload.width, payload.height), imageWidth: payload.width, imageHeight: payload.height };
    } catch (error) {
      throw this.userError(error);
    }
  }

  /** Nothing to release: each call is its own HTTP request. */
  async close(): Promise<void> {}

  private userError(error: unknown): unknown {
    if (isUserError(error)) return error;
    if (!(error instanceof RemoteError)) return error;
    if (error.status === 401 || error.status === 403) return new UserError(`${error.message}: set PALI_API_KEY to the server's key`);
    return new UserError(error.message);
  }
}
