/**
 * What a remote server is sent for one PaliGemma task, by the extension's remote backend and by
 * `pali mcp --remote`: the image as a data: URL with its size in the engine's orientation, and the raw task
 * prompt (the server has no chat template for PaliGemma). What cannot be sent, an unreadable image or a
 * detect with no object names, is a UserError: the user's to fix, before any request leaves.
 */
import { taskPrompt, type TaskRequest } from '../prompts.js';
import { imagePayload, type ImagePayload } from './imagePayload.js';
import { describeError, UserError } from '../errors.js';

export interface RemoteTask {
  image: ImagePayload;
  prompt: string;
}

export function remoteTask(bytes: Uint8Array, name: string, task: TaskRequest | { prompt: string }): RemoteTask {
  return { image: asInput(() => imagePayload(bytes, name)), prompt: 'prompt' in task ? task.prompt : asInput(() => taskPrompt(task)) };
}

function asInput<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw new UserError(describeError(error));
  }
}
