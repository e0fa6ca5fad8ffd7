/**
 * `pali mcp --model DIR`: the image tools answer from a model loaded in this process, on the first image
 * call. Calls that arrive while it loads wait for that one load, and each hears its progress.
 */
import type { TaskRequest } from '../../common/prompts.js';
import type { DeviceChoice, DtypeChoice, ImageSource } from '../../protocol.js';
import { EngineService } from '../service/engineService.js';
import type { Vision, VisionAnswer } from './remoteVision.js';

export class LocalVision implements Vision {
  private readonly service: EngineService;
  private loaded: Promise<unknown> | undefined;
  /** Progress of the calls in flight: the one load serves them all, so its news goes to each. */
  private readonly waiting = new Set<(message: string) => void>();

  constructor(private readonly model: { modelDir: string; dtype: DtypeChoice; device: DeviceChoice }, cacheRoot: string | undefined) {
    this.service = new EngineService({ cacheRoot });
  }

  async generate(image: ImageSource, task: TaskRequest, maxNewTokens: number, signal: AbortSignal, onPiece: (piece: string) => void, onProgress: (message: string) => void): Promise<VisionAnswer> {
    this.waiting.add(onProgress);
    try {
      this.loaded ??= this.service.loadModel(this.model, undefined, { onProgress: (message) => this.waiting.forEach((sink) => sink(message)) }).catch((error) => {
        this.loaded = undefined;
        throw error;
      });
      await this.loaded;
      return await this.service.generate({ image, task, maxNewTokens }, signal, { onText: onPiece, onProgress });
    } finally {
      this.waiting.delete(onProgress);
    }
  }

  async close(): Promise<void> {
    await this.service.unload();
  }
}
