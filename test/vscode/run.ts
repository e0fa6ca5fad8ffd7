/**
 * `npm run test:vscode`: extension-API tests in VS Code itself through @vscode/test-electron. It downloads
 * VS Code from Microsoft's update server; where that is unreachable (our offline machines and CI) the test
 * is reported as skipped, with the reason. What it checks is checked in code-server by the end-to-end
 * suite too (npm run test:e2e: A0 registers every command, 4i marks an image decorative), which runs
 * everywhere.
 */
import { downloadAndUnzipVSCode, runTests } from '@vscode/test-electron';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

test('the extension through VS Code\'s API, in VS Code', { timeout: 600_000 }, async (t) => {
  const repo = path.join(__dirname, '..', '..');
  let vscodeExecutablePath: string;
  try {
    vscodeExecutablePath = await downloadAndUnzipVSCode({ version: 'stable', timeout: 20_000 });
  } catch (error) {
    t.skip(`VS Code could not be downloaded here (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); npm run test:e2e checks the same in code-server`);
    return;
  }
  execFileSync(process.execPath, [path.join(__dirname, 'build.mjs')], { stdio: 'inherit' });
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'pali-vscode-'));
  fs.writeFileSync(path.join(workspace, 'notes.md'), '# Notes\n\n![](photo.png)\n');
  await runTests({
    vscodeExecutablePath,
    extensionDevelopmentPath: repo,
    extensionTestsPath: path.join(repo, 'out', 'vscode-tests', 'index.js'),
    launchArgs: [workspace, '--disable-extensions', '--skip-welcome'],
  });
});
