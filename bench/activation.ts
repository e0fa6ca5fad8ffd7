/**
 * `npm run bench:activation`: what activating the extension costs before any of its code runs: the size of
 * dist/extension.js and the time V8 takes to compile it, against the TypeScript chunk that loads only on
 * the first JSX/TSX parse. Median of 9 compilations each, in fresh V8 contexts (no code cache).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

const dist = path.join(__dirname, '..', 'dist');

function compileMs(file: string): number {
  const source = fs.readFileSync(file, 'utf8');
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const start = performance.now();
    // Runs the module wrapper's top level only up to defining the function: compiling is what is measured.
    new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: `${file}#${i}` });
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[4]!;
}

for (const name of ['extension.js', 'typescript.js']) {
  const file = path.join(dist, name);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  const role = name === 'extension.js' ? 'at activation' : 'on the first JSX/TSX parse';
  console.log(`${name.padEnd(16)}${(fs.statSync(file).size / 2 ** 20).toFixed(2).padStart(7)} MB  compiles in ${compileMs(file).toFixed(1).padStart(6)} ms  (${role})`);
}
