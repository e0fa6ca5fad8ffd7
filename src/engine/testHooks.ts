/**
 * The engine's test hooks, read from the environment in this one place. Nothing sets them outside the
 * tests; a user who did would only get the behaviour the tests need.
 *
 * PALI_FAULT injects a fault the tests cannot cause for real on our machines:
 * - `abort-native-load`: an engine on onnxruntime-node dies loading a model, as microsoft/onnxruntime#29763
 *   reports under Electron (no Electron runs here): the e2e test of the runtime fallback.
 * - `kill-native-load`: it is SIGKILLed loading a model, as the kernel's out-of-memory killer ends a process.
 * - `disk-full`: writing a converted graph fails as a full disk makes it fail, after the first graph.
 *
 * PALI_IDLE_GC_MS shortens the idle collection's wait (idleCollector.ts), so that the soak test sees many
 * collections in a short run.
 */
export type Fault = 'abort-native-load' | 'kill-native-load' | 'disk-full';

export function faultInjected(fault: Fault): boolean {
  return process.env.PALI_FAULT === fault;
}

/** The idle collection's wait in ms, when a test sets it. */
export function idleCollectionDelayMs(): number | undefined {
  return Number(process.env.PALI_IDLE_GC_MS) || undefined;
}
