/**
 * Image features by image content and model, so that a second question about the same image (the panel's
 * Ask box) skips decoding and the vision encoder. Least recently used entries go first.
 */
import type { EncodedImage } from '../paligemma/inputs.js';

export class FeatureCache {
  private readonly entries = new Map<string, EncodedImage>();

  constructor(private readonly capacity = 8) {}

  get(key: string): EncodedImage | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  set(key: string, value: EncodedImage): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  clear(): void {
    this.entries.clear();
  }
}
