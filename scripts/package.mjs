// `npm run package`: one VSIX per platform (vsce package --target), each carrying only its platform's
// onnxruntime-node binaries and sharp packages, no CUDA provider, and only what runs (stagePackage.mjs).
// Usage: node scripts/package.mjs [--target linux-x64 ...] [--out DIR]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ALL, root, stage } from './stagePackage.mjs';

const { values } = parseArgs({ options: { target: { type: 'string', multiple: true }, out: { type: 'string', default: path.join(root, 'out') } } });
const targets = values.target ?? ALL;
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

fs.mkdirSync(values.out, { recursive: true });
for (const target of targets) {
  if (!ALL.includes(target)) throw new Error(`unknown target ${target}: choose from ${ALL.join(', ')}`);
  const { dir, hasOnnxRuntime } = stage(target);
  const vsix = path.join(values.out, `${pkg.name}-${target}-${pkg.version}.vsix`);
  execFileSync(path.join(root, 'node_modules', '.bin', 'vsce'), ['package', '--target', target, '--no-rewrite-relative-links', '--allow-missing-repository', '--skip-license', '-o', vsix], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  fs.rmSync(dir, { recursive: true, force: true });
  const mb = (fs.statSync(vsix).size / 1024 / 1024).toFixed(1);
  console.log(`${target.padEnd(14)} ${mb.padStart(7)} MB  ${vsix}${hasOnnxRuntime ? '' : '  (onnxruntime-node ships no native binary for this platform)'}`);
}
