/**
 * Fault injection, for the tests that cannot cause these faults for real on our machines: the one place
 * PALI_FAULT is read. Nothing sets it outside those tests.
 * - `abort-native-load`: an engine on onnxruntime-node dies loading a model, as microsoft/onnxruntime#29763
 *   reports under Electron (no Electron runs here): the e2e test of the runtime fallback.
 * - `kill-native-load`: it is SIGKILLed loading a model, as the kernel's out-of-memory killer ends a process.
 * - `disk-full`: writing a converted graph fails as a full disk makes it fail, after the first graph.
 */
export type Fault = 'abort-native-load' | 'kill-native-load' | 'disk-full';

export function faultInjected(fault: Fault): boolean {
  return process.env.PALI_FAULT === fault;
}
