/** The dtype vocabulary is defined once (src/common/dtypes.ts); the setting in package.json offers exactly it. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { autoDtype, DTYPE_CHOICES, dtypeForDevice, parseDtypeChoice } from '../../src/common/dtypes.js';

test('paligemma.dtype offers exactly the dtype choices, and defaults to auto', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
  const setting = manifest.contributes.configuration.properties['paligemma.dtype'];
  assert.deepEqual(setting.enum, [...DTYPE_CHOICES]);
  assert.equal(setting.default, 'auto');
});

test('auto runs int8 on a CPU with integer dot products, int4 on other CPUs and WebAssembly, fp16 on a GPU', () => {
  assert.equal(dtypeForDevice('cpu', true), 'int8');
  assert.equal(dtypeForDevice('cpu', false), 'int4');
  assert.equal(dtypeForDevice('wasm', true), 'int4');
  assert.equal(dtypeForDevice('cuda'), 'fp16');
  assert.equal(dtypeForDevice('webgpu'), 'fp16');
  // An export's int8 files are another quantizer's: its CPU runs int4 whatever its instructions.
  assert.equal(autoDtype('cpu', 'export').dtype, 'int4');
  assert.match(autoDtype('cpu', { integerDotProduct: true, kernel: 'AMX' }).reason, /^int8: .*AMX/);
});

test('--dtype accepts the choices and q4 (transformers.js\' name for int4), nothing else', () => {
  for (const choice of DTYPE_CHOICES) assert.equal(parseDtypeChoice(choice), choice);
  assert.equal(parseDtypeChoice('q4'), 'int4');
  assert.equal(parseDtypeChoice('int3'), undefined);
  assert.equal(parseDtypeChoice('AUTO'), undefined);
});
