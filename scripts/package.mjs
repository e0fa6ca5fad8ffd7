// `npm run package`: one VSIX per platform (vsce package --target), each carrying only its platform's
// onnxruntime-node binaries and sharp packages, and no CUDA provider. Each target is staged in a folder of
// its own: the built extension plus the production node_modules, pruned to the target; the sharp packages
// of other platforms come from the npm registry (npm pack), since npm installs only the host's.
// Usage: node scripts/package.mjs [--target linux-x64 ...] [--out DIR]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ALL = ['linux-x64', 'linux-arm64', 'darwin-arm64', 'darwin-x64', 'win32-x64'];
const { values } = parseArgs({ options: { target: { type: 'string', multiple: true }, out: { type: 'string', default: path.join(root, 'out') } } });
const targets = values.target ?? ALL;
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const sharpPkg = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'sharp', 'package.json'), 'utf8'));
const FILES = ['package.json', 'package.nls.json', 'README.md', 'CHANGELOG.md', 'LICENSE', '.vscodeignore', 'dist', 'media', 'l10n'];

function productionPackages() {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter((p) => p.includes(`${path.sep}node_modules${path.sep}`));
}

function sharpPackagesFor(target) {
  const [platform, arch] = target.split('-');
  return Object.entries(sharpPkg.optionalDependencies).filter(([name]) => name === `@img/sharp-${platform}-${arch}` || name === `@img/sharp-libvips-${platform}-${arch}`);
}

function stage(target) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pali-package-${target}-`));
  for (const file of FILES) fs.cpSync(path.join(root, file), path.join(dir, file), { recursive: true, filter: (src) => !src.endsWith('.map') });
  for (const source of productionPackages()) {
    const relative = path.relative(root, source);
    if (/node_modules[\\/]@img[\\/]sharp-/.test(relative)) continue; // added per target below
    fs.cpSync(source, path.join(dir, relative), { recursive: true, dereference: true });
  }
  // onnxruntime-node: keep this platform's binaries only (its CUDA libraries were never installed).
  const [platform, arch] = target.split('-');
  const bin = path.join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
  let hasOnnxRuntime = false;
  for (const p of fs.readdirSync(bin)) {
    for (const a of fs.readdirSync(path.join(bin, p))) {
      if (p === platform && a === arch) hasOnnxRuntime = true;
      else fs.rmSync(path.join(bin, p, a), { recursive: true });
    }
  }
  for (const [name, version] of sharpPackagesFor(target)) {
    const tarball = execFileSync('npm', ['pack', `${name}@${version}`, '--silent'], { cwd: dir, encoding: 'utf8' }).trim().split('\n').at(-1);
    const into = path.join(dir, 'node_modules', ...name.split('/'));
    fs.mkdirSync(into, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(dir, tarball), '-C', into, '--strip-components=1']);
    fs.rmSync(path.join(dir, tarball));
  }
  return { dir, hasOnnxRuntime };
}

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
