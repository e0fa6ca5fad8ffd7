/**
 * Owns the engine process (as rust-analyzer's ctx.ts owns its server): spawned on first use, never at
 * activation; checked with a self test on each runtime in turn; restarted after a crash until 5 crashes in
 * 3 minutes; talked to over vscode-jsonrpc, with VS Code's cancellation tokens sent as $/cancelRequest.
 */
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc/node';
import {
  GenerateRequest, LoadModelRequest, REQUEST_CANCELLED_CODE, SegmentAnswerRequest, USER_ERROR_CODE, type UserErrorData,
  type GenerateResultMessage, type ModelInfo, type SegmentAnswerResult,
} from '../../protocol.js';
import type { Settings, SettingsChange } from '../config.js';
import { CrashPolicy } from './crashPolicy.js';
import type { EngineLink, ExitCause } from './engineLink.js';
import { EngineProcess } from './engineProcess.js';
import { SharedEngineLink } from './sharedEngineLink.js';
import { sharedEngineLogFile } from '../../engine/shared/startSharedEngine.js';
import { engineRuntimes, type EngineRuntime } from './runtimes.js';
import { EngineError, type EngineGenerateParams, type EngineState, type VisionEngine } from './visionEngine.js';
import { describeError } from '../../common/errors.js';

export type { EngineState } from './visionEngine.js';

interface Running {
  engine: EngineLink;
  runtime: EngineRuntime;
}

export class EngineClient implements VisionEngine, vscode.Disposable {
  private running: Running | undefined;
  private starting: Promise<Running> | undefined;
  private modelKey: string | undefined;
  private loading: Promise<ModelInfo> | undefined;
  private warming: Promise<void> | undefined;
  private warmUpFailedFor: string | undefined;
  private busyCount = 0;
  private stopped = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly crashPolicy = new CrashPolicy();
  /** Runtimes whose engine died loading a model, left out of later starts until Restart Engine. */
  private readonly crashedWhileLoading = new Set<string>();
  private readonly stateChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeState = this.stateChanged.event;
  state: EngineState = 'off';
  model: ModelInfo | undefined;
  /** Why earlier runtimes or devices were not used, for the status bar's tooltip and the log. */
  notes: string[] = [];

  constructor(
    private readonly enginePath: string,
    private readonly log: vscode.LogOutputChannel,
    private readonly settings: () => Settings,
    private readonly cacheDir: string,
  ) {}

  get pid(): number | undefined {
    return this.running?.engine.pid;
  }

  /** The shared engine's pid, when this window uses the user's shared engine rather than one of its own. */
  get sharedEnginePid(): number | undefined {
    return this.running?.engine.kind === 'shared' ? this.running.engine.pid : undefined;
  }

  get runtimeLabel(): string | undefined {
    return this.running?.runtime.label;
  }

  private setState(state: EngineState): void {
    if (this.state !== state) {
      this.state = state;
      // An engine that becomes ready (loaded, or done with its requests) starts its idle clock.
      if (state === 'ready') this.scheduleIdleStop();
      else this.cancelIdleStop();
      this.stateChanged.fire();
    }
  }

  /**
   * `paligemma.keepAlive` minutes after the engine last became ready, it stops: a window left open with
   * a Markdown file must not hold 3.5 GB for nothing. Stopping the process returns every byte, which
   * releasing the sessions inside it would not (allocators keep freed pages). The next request starts
   * it again; a background warm-up does not, until a request has.
   */
  private scheduleIdleStop(): void {
    this.cancelIdleStop();
    const minutes = this.settings().keepAliveMinutes;
    // A shared engine unloads by itself, when no client of any window or tool has asked for keepAlive minutes.
    if (minutes <= 0 || this.running?.engine.kind === 'shared') return;
    this.idleTimer = setTimeout(() => this.stopIdle(minutes), minutes * 60_000);
    this.idleTimer.unref?.();
  }

  private cancelIdleStop(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private stopIdle(minutes: number): void {
    this.idleTimer = undefined;
    const running = this.running;
    if (!running || this.state !== 'ready' || this.busyCount > 0 || this.loading || this.warming) return;
    this.log.info(`no request for ${minutes} minute(s): stopping the engine to return the model's memory (paligemma.keepAlive)`);
    this.forgetEngine();
    running.engine.kill();
    this.setState('idle');
  }

  /**
   * Loads the configured model in the background because a feature is about to need it (`reason`), so
   * that the first hover or caption does not wait for a cold load. Only the status bar shows it; a
   * failure is logged and left for the request that follows to report.
   */
  warmUp(reason: string): void {
    const settings = this.settings();
    const key = modelKeyOf(settings);
    // After an idle stop only a request brings the model back: diagnostics warm up on every edit.
    if (!settings.modelPath || this.state === 'stopped' || this.state === 'idle' || this.warming || this.loading) return;
    // Diagnostics call this on every edit: a model that failed to load is not retried in the background
    // until its settings change (a request still tries, and reports the error).
    if ((this.model && this.modelKey === key) || this.warmUpFailedFor === key) return;
    this.log.info(`loading the model ahead of use: ${reason}`);
    const source = new vscode.CancellationTokenSource();
    this.warming = this.ensureModel(source.token, { quiet: true }).then(
      () => {
        this.warmUpFailedFor = undefined;
      },
      (error) => {
        this.warmUpFailedFor = key;
        this.log.info(`background load did not finish: ${describeError(error)}`);
      },
    ).finally(() => {
      this.warming = undefined;
      source.dispose();
    });
  }

  /** Generates for an image; streamed pieces go to `onPiece`. Cancelling the token cancels in the engine. */
  async generate(params: EngineGenerateParams, token: vscode.CancellationToken, onPiece?: (piece: string) => void): Promise<GenerateResultMessage> {
    const running = await this.ensureModel(token);
    const { maxImagePixels, engineMemoryLimitGB, vaePath, keepAliveMinutes } = this.settings();
    const streamId = randomUUID();
    const stopListening = onPiece ? running.engine.onTextPieces(streamId, onPiece) : undefined;
    this.busyCount++;
    this.setState('busy');
    try {
      const request = () => running.engine.connection.sendRequest(GenerateRequest, { ...params, maxImagePixels, memoryLimitMB: Math.round(engineMemoryLimitGB * 1024), streamId, vaePath: vaePath || undefined, keepAliveMinutes }, token);
      return await ('task' in params.task && params.task.task === 'segment' ? withSegmentationProgress(running.engine, request) : request());
    } catch (error) {
      const failure = this.translate(error, token, running);
      // A request that died with its engine says why, once the process's exit has been read.
      if (failure.kind === 'crashed') throw this.stoppedBecause(await running.engine.whyStopped(2000)) ?? failure;
      if (unloadedByEngine(error)) this.forgetModel('over paligemma.engineMemoryLimitGB');
      throw failure;
    } finally {
      stopListening?.();
      if (--this.busyCount === 0 && this.running === running) this.setState(this.model ? 'ready' : 'idle');
    }
  }

  /**
   * Masks for an answer from another backend: the engine process decodes the <seg> tokens with the
   * VQ-VAE (small, loaded once); no model is loaded for it.
   */
  async segmentAnswer(text: string, imageWidth: number, imageHeight: number, token: vscode.CancellationToken): Promise<SegmentAnswerResult> {
    const running = await this.ensureStarted();
    const { vaePath } = this.settings();
    // In flight, so that the idle stop (which checks busyCount) waits for it; its clock restarts after.
    this.busyCount++;
    try {
      return await withSegmentationProgress(running.engine, () => running.engine.connection.sendRequest(SegmentAnswerRequest, { text, imageWidth, imageHeight, vaePath: vaePath || undefined }, token));
    } catch (error) {
      throw this.translate(error, token, running);
    } finally {
      if (--this.busyCount === 0 && this.running === running && this.state === 'ready') this.scheduleIdleStop();
    }
  }

  private translate(error: unknown, token?: vscode.CancellationToken, running?: Running): EngineError {
    if (error instanceof EngineError) return error;
    if (token?.isCancellationRequested || (error instanceof ResponseError && error.code === REQUEST_CANCELLED_CODE)) {
      return new EngineError(vscode.l10n.t('Cancelled.'), 'cancelled');
    }
    if (error instanceof ResponseError && error.code === USER_ERROR_CODE) return new EngineError(error.message, 'user');
    // A dying engine closes the connection (failing this request) before its exit event arrives.
    const died = !this.running || running?.engine.gone;
    if (died) return new EngineError(vscode.l10n.t('The PaliGemma engine stopped while working on this request. Try again: it restarts automatically.'), 'crashed');
    return new EngineError(describeError(error), 'internal');
  }

  /**
   * Starts the engine if needed and loads the configured model (once per model, dtype and device). An
   * engine that dies while loading leaves its runtime for the next one in line: onnxruntime-node has a
   * reported crash at model load under Electron only (microsoft/onnxruntime#29763), after its self test.
   */
  private async ensureModel(token: vscode.CancellationToken, options: { quiet?: boolean } = {}): Promise<Running> {
    const settings = this.settings();
    if (!settings.modelPath) {
      throw new EngineError(vscode.l10n.t('No PaliGemma model is selected. Choose one with "PaliGemma: Select Model".'), 'no-model');
    }
    for (;;) {
      const running = await this.ensureStarted();
      try {
        await this.loadModel(running, settings, options.quiet === true);
        return running;
      } catch (error) {
        const failure = this.translate(error, token, running);
        if (failure.kind !== 'crashed' || token.isCancellationRequested) throw failure;
        // Stopped on purpose mid-load (new settings, a restart, the window closing): no fault of its runtime.
        if (running.engine.stoppedOnPurpose) throw failure;
        // Killed (SIGKILL: the system out of memory, or a person) or out of memory is no fault of the
        // runtime, and a runtime further down the list would need more memory, not less: it is a crash
        // like any other, which the exit handler counts and reports.
        const cause = await running.engine.whyStopped(2000);
        if (cause === 'killed' || cause === 'out-of-memory') throw this.stoppedBecause(cause) ?? failure;
        if (!this.skipRuntime(running.runtime)) throw failure;
        // Its exit event may not have come yet: do not hand the dead engine out again.
        if (this.running === running) this.forgetEngine();
      }
    }
  }

  /** Leaves `runtime` out of later starts; false when no runtime would be left. */
  private skipRuntime(runtime: EngineRuntime): boolean {
    this.crashedWhileLoading.add(runtime.label);
    const left = this.runtimesToTry();
    if (left.length) this.note(`${runtime.label} stopped while loading the model; moving to ${left[0]!.label}`);
    return left.length > 0;
  }

  private runtimesToTry(): EngineRuntime[] {
    return engineRuntimes(this.settings().nodePath).filter((runtime) => !this.crashedWhileLoading.has(runtime.label));
  }

  /** `quiet`: a load ahead of use, shown in the status bar (window progress) rather than as a notification. */
  private async loadModel(running: Running, settings: Settings, quiet: boolean): Promise<void> {
    const key = modelKeyOf(settings);
    if (this.modelKey === key && this.model) return;
    this.loading ??= Promise.resolve(vscode.window.withProgress(
      quiet
        ? { location: vscode.ProgressLocation.Window, title: vscode.l10n.t('PaliGemma: loading the model') }
        : { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('PaliGemma'), cancellable: true },
      async (progress, progressToken) => {
        this.setState('loading');
        const stopListening = running.engine.onProgress((message) => progress.report({ message }));
        let overLimit = false;
        try {
          progress.report({ message: vscode.l10n.t('loading the model') });
          const info = await running.engine.connection.sendRequest(LoadModelRequest, { modelDir: settings.modelPath, dtype: settings.dtype, device: settings.device, memoryLimitMB: Math.round(settings.engineMemoryLimitGB * 1024), keepAliveMinutes: settings.keepAliveMinutes }, progressToken);
          this.model = info;
          this.modelKey = key;
          for (const fallback of info.fallbacks) this.note(`device ${fallback.device} not used: ${fallback.error}`);
          if (info.deviceNote) this.log.info(info.deviceNote);
          this.log.info(`model ${info.modelDir} (${info.dtype}) on ${info.device}, graphs in ${info.onnxDir}`);
          return info;
        } catch (error) {
          overLimit = unloadedByEngine(error);
          if (overLimit) this.forgetModel('over paligemma.engineMemoryLimitGB, while loading');
          throw error;
        } finally {
          stopListening();
          // An engine that died loading has its state from the exit handler ('off', or 'stopped'): not 'ready'.
          if (this.running === running && !running.engine.gone) this.setState(this.busyCount > 0 ? 'busy' : overLimit ? 'idle' : 'ready');
        }
      },
    ));
    try {
      await this.loading;
    } finally {
      this.loading = undefined;
    }
  }

  private note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
    this.log.info(text);
  }

  private ensureStarted(): Promise<Running> {
    if (this.stopped) {
      return Promise.reject(new EngineError(vscode.l10n.t('The PaliGemma engine crashed too often and was stopped. Run "PaliGemma: Restart Engine" to start it again.'), 'stopped'));
    }
    if (this.running) return Promise.resolve(this.running);
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<Running> {
    this.setState('starting');
    const failures: string[] = [];
    for (const runtime of this.runtimesToTry()) {
      try {
        const engine = await this.startEngine(runtime);
        engine.onExit((code, signal, cause) => this.onExit(engine, code, signal, cause));
        engine.onModelUnloaded((why) => this.modelUnloaded(engine, why));
        const running: Running = { engine, runtime };
        this.running = running;
        const { selfTest } = engine;
        const which = engine instanceof SharedEngineLink
          ? `shared engine pid ${engine.pid} (${engine.startedHere ? `started on ${runtime.label}` : 'already running'}; its log: ${sharedEngineLogFile(this.cacheDir)})`
          : `engine pid ${engine.pid} on ${runtime.label}`;
        this.log.info(`${which}: Node ${selfTest.node}, onnxruntime ${selfTest.onnxruntime} (${selfTest.backends.join(', ')})`);
        if (failures.length) this.note(`engine runs on ${runtime.label} because ${failures.join('; ')}`);
        this.setState('ready');
        return running;
      } catch (error) {
        const reason = `${runtime.label} failed its self test: ${describeError(error)}`;
        failures.push(reason);
        this.log.warn(reason);
      }
    }
    this.setState('off');
    throw new EngineError(vscode.l10n.t('The PaliGemma engine could not start: {0}', failures.join('; ')), 'internal');
  }

  /**
   * The user's shared engine (paligemma.sharedEngine), which every window and `pali` share, or an engine
   * of this window's own: also when the shared one cannot be reached or started (a folder others may
   * enter, a socket path the system refuses...), so that the window works and its tooltip says why.
   */
  private async startEngine(runtime: EngineRuntime): Promise<EngineLink> {
    const options = { enginePath: this.enginePath, command: runtime.command, env: runtime.env, cacheDir: this.cacheDir };
    const ownEngine = () => EngineProcess.start({ ...options, onStderrLine: (line) => this.log.info(`[engine] ${line}`) });
    if (!this.settings().sharedEngine) return ownEngine();
    let sharedFailure: string;
    try {
      return await SharedEngineLink.connectOrStart({ ...options, keepAliveMinutes: this.settings().keepAliveMinutes });
    } catch (error) {
      sharedFailure = describeError(error);
      this.log.warn(`the shared engine could not be used on ${runtime.label}: ${sharedFailure}`);
    }
    // Said only once this window's own engine runs: a runtime that cannot run either is the runtime's fault,
    // and the next runtime in line may start the shared engine after all.
    const engine = await ownEngine();
    this.note(`the shared engine could not be used (${sharedFailure}): this window runs its own`);
    return engine;
  }

  /** The shared engine unloaded its model: no request from anyone for keepAlive minutes, or over a client's memory limit. */
  private modelUnloaded(engine: EngineLink, why: string): void {
    if (this.running?.engine === engine) this.forgetModel(why);
  }

  /** The engine unloaded the model, the process living on: the next request loads it, and until then it is idle. */
  private forgetModel(why: string): void {
    this.log.info(`the engine unloaded the model: ${why}`);
    this.model = undefined;
    this.modelKey = undefined;
    if (this.state === 'ready') this.setState('idle');
  }

  /** The request's error for an engine that stopped under it, when the cause is known and worth saying. */
  private stoppedBecause(cause: ExitCause | undefined): EngineError | undefined {
    if (cause === 'out-of-memory') {
      return new EngineError(vscode.l10n.t('The PaliGemma engine ran out of memory on this request. Use int4 weights or a smaller model, or close other programs; it restarts with the next request.'), 'crashed');
    }
    if (cause === 'killed') {
      return new EngineError(vscode.l10n.t('The PaliGemma engine was killed while working on this request (SIGKILL: the system does this when memory runs out). It restarts with the next request.'), 'crashed');
    }
    return undefined;
  }

  private onExit(engine: EngineLink, code: number | null, signal: NodeJS.Signals | null, cause: ExitCause): void {
    if (this.running?.engine !== engine) return; // an intentional stop
    this.forgetEngine();
    if (cause === 'stopped') {
      // `pali stop` on the shared engine: no crash. The next request starts one again.
      this.log.info('the shared engine was stopped (pali stop); the next request starts it again');
      this.setState('off');
      return;
    }
    const how = signal ? `signal ${signal}` : code !== null ? `exit code ${code}` : `the shared engine's connection closed; its log: ${sharedEngineLogFile(this.cacheDir)}`;
    this.log.error(`engine stopped unexpectedly (${how}${cause === 'out-of-memory' ? ', out of memory' : ''})`);
    if (this.crashPolicy.shouldRestart()) {
      this.setState('off');
      const message = cause === 'out-of-memory'
        ? vscode.l10n.t('The PaliGemma engine ran out of memory ({0}). Use int4 weights or a smaller model, or close other programs. It restarts with the next request.', how)
        : vscode.l10n.t('The PaliGemma engine stopped unexpectedly ({0}). It restarts with the next request.', how);
      void vscode.window.showWarningMessage(message, vscode.l10n.t('Show Log'))
        .then((choice) => choice && this.log.show());
    } else {
      this.stopped = true;
      this.setState('stopped');
      const restart = vscode.l10n.t('Restart Engine');
      void vscode.window.showErrorMessage(vscode.l10n.t('The PaliGemma engine crashed 5 times in 3 minutes and was stopped.'), restart, vscode.l10n.t('Show Log'))
        .then((choice) => (choice === restart ? this.restart() : choice ? this.log.show() : undefined));
    }
  }

  /**
   * A running engine cannot honour a new model, dtype, device or Node: it restarts, and the model loads
   * again with the next request (or ahead of it, as warm-up decides).
   */
  async settingsChanged(change: SettingsChange): Promise<void> {
    if (change.changed.has('keepAliveMinutes') && this.state === 'ready') this.scheduleIdleStop();
    if (change.needsEngineRestart && this.stopped) {
      // Another model, dtype, device or Node is what a user tries after repeated crashes: the crashes were
      // counted against the old settings, so the new ones start afresh.
      this.log.info(`settings changed (${[...change.changed].join(', ')}): the engine, stopped after repeated crashes, may start again`);
      this.stopped = false;
      this.crashPolicy.reset();
      this.crashedWhileLoading.clear();
      this.warmUpFailedFor = undefined;
      this.setState('off');
      return;
    }
    if (!change.needsEngineRestart || !this.running) return;
    this.log.info(`settings changed (${[...change.changed].join(', ')}): restarting the engine`);
    this.warmUpFailedFor = undefined;
    await this.restart();
  }

  async restart(): Promise<void> {
    this.stopped = false;
    this.crashPolicy.reset();
    this.crashedWhileLoading.clear();
    await this.stop();
    await this.ensureStarted();
  }

  /** The engine process and the model it held are gone (or going): the next request starts and loads again. */
  private forgetEngine(): void {
    this.running = undefined;
    this.model = undefined;
    this.modelKey = undefined;
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.forgetEngine();
    if (running) {
      running.engine.kill();
    }
    this.setState(this.stopped ? 'stopped' : 'off');
  }

  dispose(): void {
    this.cancelIdleStop();
    void this.stop();
    this.stateChanged.dispose();
  }
}

/** A segmentation in the status bar, with the engine's news (the VQ-VAE's one-time download) while it runs. */
function withSegmentationProgress<T>(engine: EngineLink, work: () => Promise<T>): Promise<T> {
  return Promise.resolve(vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: vscode.l10n.t('PaliGemma: segmenting') }, async (progress) => {
    const stopListening = engine.onProgress((message) => progress.report({ message }));
    try {
      return await work();
    } finally {
      stopListening();
    }
  }));
}

/** Which model load a set of settings asks for: a change of any part needs a new load. */
function modelKeyOf(settings: Settings): string {
  return `${settings.modelPath}|${settings.dtype}|${settings.device}`;
}

/** The engine unloaded the model before answering (over paligemma.engineMemoryLimitGB): it is not loaded. */
function unloadedByEngine(error: unknown): boolean {
  return error instanceof ResponseError && (error.data as UserErrorData | undefined)?.modelUnloaded === true;
}
