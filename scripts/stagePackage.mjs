// What one platform's VSIX holds, staged in a folder of its own (scripts/package.mjs packs it): the built
// extension plus the packages it loads at run time, pruned to the target; the sharp packages of other
// platforms come from the npm registry (npm pack), since npm installs only the host's.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const ALL = ['linux-x64', 'linux-arm64', 'darwin-arm64', 'darwin-x64', 'win32-x64'];
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const sharpPkg = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'sharp', 'package.json'), 'utf8'));
const FILES = ['package.json', 'package.nls.json', 'README.md', 'CHANGELOG.md', 'LICENSE', '.vscodeignore', 'dist', 'media', 'l10n'];

/**
 * Production dependencies that nothing loads at run time, with their subtrees (unless something else needs
 * them): onnxruntime-node's install script downloads CUDA files with adm-zip and global-agent; onnxruntime-web's
 * Node build (dist/ort.node.min.js) requires onnxruntime-common alone, its other dependencies serving the
 * browser builds (and protobufjs bringing @types/node); transformers.js's Node build carries jinja and the
 * tokenizers inside it.
 */
const NOT_AT_RUN_TIME = {
  'onnxruntime-node': ['adm-zip', 'global-agent'],
  'onnxruntime-web': ['flatbuffers', 'guid-typescript', 'long', 'platform', 'protobufjs'],
  '@huggingface/transformers': ['@huggingface/jinja', '@huggingface/tokenizers'],
};

/** The folders of the packages the extension and the engine load, from npm's dependency tree. */
export function runtimePackages() {
  const tree = JSON.parse(execFileSync('npm', ['ls', '--omit=dev', '--all', '--json', '--long'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 }));
  // npm lists a package's dependencies once, where it first meets it ("deduped" elsewhere): index the full entries.
  const full = new Map();
  const index = (node) => {
    for (const child of Object.values(node.dependencies ?? {})) {
      if (!child.path) continue;
      const known = full.get(child.path);
      if (!known || Object.keys(child.dependencies ?? {}).length > Object.keys(known.dependencies ?? {}).length) full.set(child.path, child);
      index(child);
    }
  };
  index(tree);
  const kept = new Set();
  const visit = (node, name) => {
    for (const [dependency, child] of Object.entries(node.dependencies ?? {})) {
      // No path: an optional dependency of another platform (sharp's are added per target).
      if (NOT_AT_RUN_TIME[name]?.includes(dependency) || !child.path || kept.has(child.path)) continue;
      kept.add(child.path);
      visit(full.get(child.path) ?? child, dependency);
    }
  };
  visit(tree, pkg.name);
  return [...kept];
}

/** Files of the packages we keep that nothing loads in Node: builds for browsers, sources, type declarations. */
function pruneFiles(dir) {
  const modules = path.join(dir, 'node_modules');
  // onnxruntime-web in Node: dist/ort.node.min.js, which loads the plain WebAssembly build (no WebGPU/JSEP,
  // asyncify or JSPI build: the engine uses it as the CPU fallback only).
  const ortWeb = path.join(modules, 'onnxruntime-web', 'dist');
  const ortWebKeep = new Set(['ort.node.min.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']);
  for (const name of fs.readdirSync(ortWeb)) if (!ortWebKeep.has(name)) fs.rmSync(path.join(ortWeb, name), { recursive: true });
  // Its TypeScript sources compiled one file each (lib/): the dist build above holds them.
  fs.rmSync(path.join(modules, 'onnxruntime-web', 'lib'), { recursive: true, force: true });
  // transformers.js in Node: dist/transformers.node.cjs (the package's "node" "require" export).
  const transformers = path.join(modules, '@huggingface', 'transformers');
  for (const name of ['src', 'types']) fs.rmSync(path.join(transformers, name), { recursive: true, force: true });
  for (const name of fs.readdirSync(path.join(transformers, 'dist'))) if (name !== 'transformers.node.cjs') fs.rmSync(path.join(transformers, 'dist', name), { recursive: true });
}

/** What a staged package must not hold: each is a file nothing loads (see above). Empty when it is as it should be. */
export function unexpectedFiles(dir) {
  const found = [];
  const walk = (folder) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      const relative = path.relative(dir, file).split(path.sep).join('/');
      if (/node_modules\/(@types|undici-types|type-fest|adm-zip|global-agent|protobufjs|@huggingface\/jinja)(\/|$)/.test(relative) ||
        /onnxruntime-web\/(lib(\/|$)|dist\/.*(jsep|jspi|asyncify|webgl|webgpu|bundle|ort\.all))/.test(relative) ||
        /@huggingface\/transformers\/(src|types)(\/|$)/.test(relative)) {
        found.push(relative);
        continue;
      }
      if (entry.isDirectory()) walk(file);
    }
  };
  walk(dir);
  return found;
}

function sharpPackagesFor(target) {
  const [platform, arch] = target.split('-');
  return Object.entries(sharpPkg.optionalDependencies).filter(([name]) => name === `@img/sharp-${platform}-${arch}` || name === `@img/sharp-libvips-${platform}-${arch}`);
}

/** A folder holding what the `target` VSIX packs; throws when it holds a file nothing loads. */
export function stage(target) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pali-package-${target}-`));
  for (const file of FILES) fs.cpSync(path.join(root, file), path.join(dir, file), { recursive: true, filter: (src) => !src.endsWith('.map') });
  for (const source of runtimePackages()) {
    const relative = path.relative(root, source);
    if (/node_modules[\\/]@img[\\/]sharp-/.test(relative)) continue; // added per target below
    // A package's own node_modules are packages of the list themselves, or ones nothing loads.
    const nested = path.join(source, 'node_modules');
    fs.cpSync(source, path.join(dir, relative), { recursive: true, dereference: true, filter: (src) => src !== nested });
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
  pruneFiles(dir);
  // vsce lists the staged tree with npm, which calls a dependency that is not there an error: the staged
  // copies no longer declare what they do not load.
  for (const [name, dropped] of Object.entries(NOT_AT_RUN_TIME)) {
    const manifest = path.join(dir, 'node_modules', ...name.split('/'), 'package.json');
    const json = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    for (const dependency of dropped) delete json.dependencies?.[dependency];
    fs.writeFileSync(manifest, JSON.stringify(json, null, 2));
  }
  const unexpected = unexpectedFiles(dir);
  if (unexpected.length) throw new Error(`the ${target} package holds files nothing loads: ${unexpected.slice(0, 5).join(', ')}`);
  return { dir, hasOnnxRuntime };
}

