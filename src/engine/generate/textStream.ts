/**
 * Turns generated ids into text pieces as they arrive. Decoding the whole suffix each time and emitting what
 * is new keeps multi-token characters (byte-fallback UTF-8) whole: a trailing U+FFFD means a character is
 * still incomplete, so it is held back until the next token completes it.
 */
export class TextStream {
  private emitted = '';

  constructor(private readonly decode: (ids: number[]) => string) {}

  /** The text that `ids` (all generated so far) add to what was already emitted. */
  push(ids: number[]): string {
    const text = this.decode(ids);
    if (text.endsWith('\uFFFD')) return '';
    const piece = text.startsWith(this.emitted) ? text.slice(this.emitted.length) : '';
    if (text.startsWith(this.emitted)) this.emitted = text;
    return piece;
  }

  /** Whatever is left at the end (an incomplete character included). */
  finish(ids: number[]): string {
    const text = this.decode(ids);
    const piece = text.startsWith(this.emitted) ? text.slice(this.emitted.length) : '';
    this.emitted = text;
    return piece;
  }
}
