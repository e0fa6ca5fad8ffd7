/**
 * VS Code language clients' restart rule: restart after a crash, but after 5 crashes within 3 minutes,
 * stop and let the user restart by hand.
 */
export class CrashPolicy {
  private crashes: number[] = [];

  constructor(private readonly maxCrashes = 5, private readonly windowMs = 3 * 60_000, private readonly now = () => Date.now()) {}

  /** Records a crash; true when the engine may be restarted. */
  shouldRestart(): boolean {
    const time = this.now();
    this.crashes = [...this.crashes.filter((t) => time - t < this.windowMs), time];
    return this.crashes.length < this.maxCrashes;
  }

  reset(): void {
    this.crashes = [];
  }
}
