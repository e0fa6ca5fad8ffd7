/**
 * The `pali` command line, run as users and other checks run it: the built dist/pali.js in a child
 * process. forge -> convert -> generate for PaliGemma 1 and 2, fp32 and int4; the --json and --logits-out
 * contract against the float64 reference; the shortcuts; and one-line errors for bad input.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { openCheckpoint } from '../../src/engine/checkpoint/checkpoint.js';
import { decodeImageFile } from '../../src/engine/image/decode.js';
import { imageToPixelValues, readImageProcessorConfig } from '../../src/engine/image/preprocess.js';
import { hostileImages } from '../helpers/hostileImages.js';
import { tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { cosineSimilarity } from '../helpers/numbers.js';
import { referenceGreedy, referenceImageFeatures } from '../reference/paligemmaReference.js';
import { thisCpu } from '../../src/engine/runtime/cpuFeatures.js';
import { pali, PALI_CLI } from '../helpers/pali.js';

function assertOneLineError(result: ReturnType<typeof pali>, pattern: RegExp): void {
  assert.equal(result.signal, null);
  assert.equal(result.code, 1, `exit code (stderr: ${result.stderr})`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${result.stderr}`);
  assert.match(lines[0]!, /^pali: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
}

const JSON_KEYS = ['device', 'generated_ids', 'prompt_ids', 'segments', 'text', 'timings'];
const TIMING_KEYS = ['decode_ms', 'prefill_ms', 'preprocess_ms', 'tokens_per_s', 'vision_ms'];

for (const preset of ['tiny', 'tiny-paligemma2'] as const) {
  describe(`pali on ${preset}`, () => {
    const root = tempDir(`cli-${preset}`);
    const model = path.join(root, 'model');
    const env = { PALI_CACHE_DIR: path.join(root, 'cache') };
    let image: string;

    test('forge writes a checkpoint in Hugging Face\'s file layout', async () => {
      const result = pali(['forge', '--preset', preset, '--seed', '3', '--out', model]);
      assert.equal(result.code, 0, result.stderr);
      for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) {
        assert.ok(fs.existsSync(path.join(model, file)), file);
      }
      image = await writeGradientPng(path.join(root, 'photo.png'), 120, 90, 5);
    });

    test('convert writes the onnx-community layout once, then reuses it', () => {
      const first = pali(['convert', '--model', model, '--dtype', 'fp32'], env);
      assert.equal(first.code, 0, first.stderr);
      const dir = first.stdout.trim().replace(/^converted: /, '');
      for (const file of ['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx', 'decoder_model_masked.onnx']) {
        assert.ok(fs.existsSync(path.join(dir, 'onnx', file)), file);
      }
      // The tokenizer's copy keeps its source's time, which names its cached tables: a second run leaves
      // it alone, and a changed tokenizer in the checkpoint reaches the copy.
      const copy = path.join(dir, 'tokenizer.json');
      const copied = fs.statSync(copy);
      assert.ok(Math.abs(copied.mtimeMs - fs.statSync(path.join(model, 'tokenizer.json')).mtimeMs) < 1, 'the copy has its source\'s time');
      const again = pali(['convert', '--model', model, '--dtype', 'fp32'], env);
      assert.equal(again.stdout.trim(), `already converted: ${dir}`);
      assert.equal(fs.statSync(copy).ctimeMs, copied.ctimeMs, 'the copy is not written again');
      const source = path.join(model, 'tokenizer.json');
      const original = fs.readFileSync(source);
      fs.writeFileSync(source, JSON.stringify({ ...JSON.parse(original.toString('utf8')), padding: null }));
      pali(['convert', '--model', model, '--dtype', 'fp32'], env);
      assert.deepEqual(fs.readFileSync(copy), fs.readFileSync(source), 'a changed tokenizer reaches the copy');
      fs.writeFileSync(source, original);
      pali(['convert', '--model', model, '--dtype', 'fp32'], env);
      assert.deepEqual(fs.readFileSync(copy), original);
      const int4 = pali(['convert', '--model', model, '--dtype', 'int4'], env);
      assert.ok(fs.existsSync(path.join(dir, 'onnx', 'decoder_model_merged_q4.onnx')), int4.stderr);
    });

    test('generate --json prints exactly the contract, and matches the float64 reference', async () => {
      const logitsFile = path.join(root, 'logits.bin');
      const result = pali(['generate', '--model', model, '--image', image, '--prompt', 'caption en', '--max-new-tokens', '7', '--json', '--dtype', 'fp32', '--logits-out', logitsFile], env);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split('\n');
      assert.equal(lines.length, 1);
      const output = JSON.parse(lines[0]!);
      assert.deepEqual(Object.keys(output).sort(), JSON_KEYS);
      assert.deepEqual(Object.keys(output.timings).sort(), TIMING_KEYS);
      assert.equal(output.device, 'cpu');
      assert.equal(typeof output.text, 'string');

      const checkpoint = openCheckpoint(model);
      const processor = readImageProcessorConfig(JSON.parse(fs.readFileSync(path.join(model, 'preprocessor_config.json'), 'utf8')), checkpoint.config.vision.image_size);
      const features = referenceImageFeatures(checkpoint, imageToPixelValues(await decodeImageFile(image), processor));
      const reference = referenceGreedy(checkpoint, features, output.prompt_ids, 7, checkpoint.config.image_token_index, new Set(checkpoint.config.eos_token_ids));
      assert.deepEqual(output.generated_ids, reference.ids);
      assert.equal(output.prompt_ids.filter((id: number) => id === checkpoint.config.image_token_index).length, checkpoint.config.num_image_tokens);
      assert.equal(output.prompt_ids[checkpoint.config.num_image_tokens], 2, '<bos> follows the image tokens');

      const raw = fs.readFileSync(logitsFile);
      const logits = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      assert.equal(logits.length, reference.stepLogits[0]!.length);
      let maxDiff = 0;
      logits.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - reference.stepLogits[0]![i]!))));
      assert.ok(maxDiff < 1e-4, `max |logit difference| ${maxDiff}`);
    });

    test('generate --dtype fp16 and int4 run their own graphs, whose logits track fp32', () => {
      const args = ['generate', '--model', model, '--image', image, '--prompt', 'ocr', '--max-new-tokens', '5', '--device', 'cpu', '--json'];
      const run = (dtype: string) => {
        const file = path.join(root, `${dtype}.bin`);
        const result = pali([...args, '--dtype', dtype, '--logits-out', file], env);
        assert.equal(result.code, 0, result.stderr);
        const raw = fs.readFileSync(file);
        return { output: JSON.parse(result.stdout), logits: new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4) };
      };
      const fp32 = run('fp32');
      const fp16 = run('fp16');
      const int4 = run('int4');
      const cacheDir = fs.readdirSync(path.join(env.PALI_CACHE_DIR, 'onnx'))[0]!;
      for (const file of ['decoder_model_merged_fp16.onnx', 'decoder_model_masked_fp16.onnx', 'decoder_model_merged_q4.onnx', 'vision_encoder_quantized.onnx']) {
        assert.ok(fs.existsSync(path.join(env.PALI_CACHE_DIR, 'onnx', cacheDir, 'onnx', file)), file);
      }

      // float16 activations: about three significant digits.
      let maxDiff = 0;
      fp16.logits.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - fp32.logits[i]!))));
      assert.ok(maxDiff > 0 && maxDiff < 0.05, `fp16 max |logit difference| ${maxDiff}`);
      assert.equal(fp16.output.generated_ids[0], fp32.output.generated_ids[0]);

      // 4-bit weights: close in direction, not in value.
      const cosine = cosineSimilarity(fp32.logits, int4.logits);
      assert.ok(cosine > 0.6 && cosine < 1 - 1e-9, `int4 cosine similarity ${cosine}`);
      assert.ok(int4.output.generated_ids.length > 0);

      // No --dtype is --dtype auto, which on a CPU runs int8 where it has integer dot products, else int4.
      const expected = thisCpu().integerDotProduct ? run('int8') : int4;
      const auto = run('auto');
      const implicit = pali([...args, '--logits-out', path.join(root, 'implicit.bin')], env);
      assert.equal(implicit.code, 0, implicit.stderr);
      const implicitLogits = fs.readFileSync(path.join(root, 'implicit.bin'));
      assert.deepEqual(auto.logits, expected.logits);
      assert.deepEqual(new Float32Array(implicitLogits.buffer, implicitLogits.byteOffset, implicitLogits.byteLength / 4), expected.logits);
      assert.notDeepEqual(auto.logits, fp32.logits);
    });

    test('--runtime wasm (onnxruntime-web, no native addon) gives the native runtime\'s ids at fp32, and runs int4', () => {
      const args = ['generate', '--model', model, '--image', image, '--prompt', 'caption en', '--max-new-tokens', '6', '--json', '--dtype', 'fp32'];
      const native = JSON.parse(pali(args, env).stdout);
      const wasm = pali([...args, '--runtime', 'wasm'], env);
      assert.equal(wasm.code, 0, wasm.stderr);
      const output = JSON.parse(wasm.stdout);
      assert.equal(output.device, 'wasm');
      assert.deepEqual(output.generated_ids, native.generated_ids);
      // int4 (what auto runs on a CPU) through WebAssembly's MatMulNBits: its logits track native fp32's.
      const int4Logits = path.join(root, 'wasm-int4.bin');
      const fp32Logits = path.join(root, 'native-fp32.bin');
      assert.equal(pali([...args, '--logits-out', fp32Logits], env).code, 0);
      const int4 = pali([...args.slice(0, -2), '--dtype', 'int4', '--runtime', 'wasm', '--logits-out', int4Logits], env);
      assert.equal(int4.code, 0, int4.stderr);
      const read = (file: string) => {
        const raw = fs.readFileSync(file);
        return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      };
      const cosine = cosineSimilarity(read(fp32Logits), read(int4Logits));
      assert.ok(cosine > 0.6 && cosine < 1 - 1e-9, `wasm int4 cosine similarity ${cosine}`);
    });

    test('an onnx-community export (no masked decoder) runs through the plain layout graph, same ids', () => {
      const converted = fs.readdirSync(path.join(env.PALI_CACHE_DIR, 'onnx'))[0]!;
      const exportDir = path.join(root, 'onnx-community-export');
      fs.cpSync(path.join(env.PALI_CACHE_DIR, 'onnx', converted), exportDir, { recursive: true });
      for (const file of fs.readdirSync(path.join(exportDir, 'onnx'))) {
        if (file.startsWith('decoder_model_masked')) fs.rmSync(path.join(exportDir, 'onnx', file));
      }
      // int4 on both sides: auto runs an export's int4 files, and a checkpoint's int8 on CPUs with dot products.
      const args = ['--image', image, '--prompt', 'caption en', '--max-new-tokens', '6', '--json', '--dtype', 'int4'];
      const fromCheckpoint = JSON.parse(pali(['generate', '--model', model, ...args], env).stdout);
      const fromExport = pali(['generate', '--model', exportDir, ...args], env);
      assert.equal(fromExport.code, 0, fromExport.stderr);
      assert.deepEqual(JSON.parse(fromExport.stdout).generated_ids, fromCheckpoint.generated_ids);

      // A q4 export as the model picker downloads it: every component named `_q4`, and nothing else.
      const onnxDir = path.join(exportDir, 'onnx');
      fs.renameSync(path.join(onnxDir, 'vision_encoder_quantized.onnx'), path.join(onnxDir, 'vision_encoder_q4.onnx'));
      fs.renameSync(path.join(onnxDir, 'embed_tokens.onnx'), path.join(onnxDir, 'embed_tokens_q4.onnx'));
      for (const file of fs.readdirSync(onnxDir)) if (!file.includes('_q4')) fs.rmSync(path.join(onnxDir, file));
      const withQ4Names = pali(['generate', '--model', exportDir, ...args], env);
      assert.equal(withQ4Names.code, 0, withQ4Names.stderr);
      assert.deepEqual(JSON.parse(withQ4Names.stdout).generated_ids, fromCheckpoint.generated_ids);
    });

    test('the shortcuts use PALI_MODEL and send their task prompts; detect prints the answer\'s boxes', () => {
      const withModel = { ...env, PALI_MODEL: model };
      // Each shortcut is generate with PaliGemma's prompt for its task (big_vision's formats), written out here.
      const shortcuts: [string[], string][] = [
        [['caption', image], 'caption en'],
        [['caption', image, '--long'], 'describe en'],
        [['caption', image, '--lang', 'fr'], 'caption fr'],
        [['ocr', image], 'ocr'],
        [['ask', image, 'what is it?'], 'answer en what is it?'],
      ];
      const texts = new Set<string>();
      for (const [args, prompt] of shortcuts) {
        const result = pali([...args, '--max-new-tokens', '4', '--quiet'], withModel);
        assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
        const generated = JSON.parse(pali(['generate', '--model', model, '--image', image, '--prompt', prompt, '--max-new-tokens', '4', '--json'], env).stdout) as { text: string };
        assert.equal(result.stdout, `${generated.text}\n`, `${args.join(' ')} answers as --prompt "${prompt}"`);
        texts.add(generated.text);
      }
      assert.ok(texts.size >= 3, `the prompts give different answers: ${[...texts].join(' | ')}`);

      // A model forged to answer one detection: its box in the 120x90 image's pixels, computed by hand
      // (y_min 100, x_min 200, y_max 300, x_max 400 of 1024 bins).
      const detector = path.join(root, 'detector');
      assert.equal(pali(['forge', '--preset', preset, '--seed', '3', '--out', detector, '--answer', '<loc0100><loc0200><loc0300><loc0400> cat']).code, 0);
      const detect = pali(['detect', image, 'cat ; dog', '--json'], { ...env, PALI_MODEL: detector });
      assert.equal(detect.code, 0, detect.stderr);
      assert.deepEqual(JSON.parse(detect.stdout).boxes, [{ label: 'cat', yMin: 8.7890625, xMin: 23.4375, yMax: 26.3671875, xMax: 46.875 }]);
      const printed = pali(['detect', image, 'cat ; dog'], { ...env, PALI_MODEL: detector });
      // Without --json: the answer, then a line per box (label, x_min, y_min, x_max, y_max).
      assert.equal(printed.stdout, '<loc0100><loc0200><loc0300><loc0400> cat\ncat\t23.4\t8.8\t46.9\t26.4\n');
    });
  });
}

describe('bad input: one line on stderr, exit 1, never a stack trace', () => {
  const root = tempDir('cli-errors');
  const env = { PALI_CACHE_DIR: path.join(root, 'cache') };
  const model = path.join(root, 'model');
  const image = path.join(root, 'ok.png');

  test('setup', async () => {
    assert.equal(pali(['forge', '--preset', 'tiny', '--seed', '1', '--out', model]).code, 0);
    await writeGradientPng(image, 20, 20);
  });

  test('a missing model folder', () => {
    assertOneLineError(pali(['generate', '--model', path.join(root, 'nope'), '--image', image, '--prompt', 'ocr'], env), /does not exist/);
  });

  test('a folder without config.json', () => {
    fs.mkdirSync(path.join(root, 'empty'));
    assertOneLineError(pali(['generate', '--model', path.join(root, 'empty'), '--image', image, '--prompt', 'ocr'], env), /config/);
  });

  test('an unsupported config', () => {
    const other = path.join(root, 'llava');
    fs.cpSync(model, other, { recursive: true });
    fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ model_type: 'llava' }));
    assertOneLineError(pali(['generate', '--model', other, '--image', image, '--prompt', 'ocr'], env), /not a PaliGemma/);
  });

  test('a truncated weights file', () => {
    const truncated = path.join(root, 'truncated');
    fs.cpSync(model, truncated, { recursive: true });
    const weights = path.join(truncated, 'model.safetensors');
    fs.truncateSync(weights, Math.floor(fs.statSync(weights).size / 2));
    assertOneLineError(pali(['generate', '--model', truncated, '--image', image, '--prompt', 'ocr'], env), /safetensors/);
  });

  /** A copy of the tiny model whose safetensors header `edit` rewrites (the data stays as it was). */
  const withHeader = (name: string, edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void) => {
    const dir = path.join(root, name);
    fs.cpSync(model, dir, { recursive: true });
    const file = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
    edit(header);
    const text = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(text.length));
    fs.writeFileSync(file, Buffer.concat([length, text, bytes.subarray(8 + headerLength)]));
    return dir;
  };
  const firstTensor = (header: Record<string, unknown>) => Object.keys(header).find((key) => key !== '__metadata__')!;

  test('corrupt weights: a header that lies about offsets or dtypes, an index naming a missing shard', () => {
    const generate = (dir: string) => pali(['generate', '--model', dir, '--image', image, '--prompt', 'ocr'], env);
    const pastEnd = withHeader('lying-offsets', (header) => {
      const entry = header[firstTensor(header)]!;
      entry.data_offsets = [entry.data_offsets[0]!, entry.data_offsets[0]! + 1_000_000_000];
    });
    assertOneLineError(generate(pastEnd), /lying-offsets\/model\.safetensors.*lies past the end of the file/);
    const wrongDtype = withHeader('lying-dtype', (header) => {
      header[firstTensor(header)]!.dtype = 'F16';
    });
    assertOneLineError(generate(wrongDtype), /lying-dtype\/model\.safetensors.*bytes for shape .* in F16/);
    const unknownDtype = withHeader('unknown-dtype', (header) => {
      header[firstTensor(header)]!.dtype = 'I8';
    });
    assertOneLineError(generate(unknownDtype), /unknown-dtype\/model\.safetensors.*I8/);
    const sharded = path.join(root, 'missing-shard');
    fs.cpSync(model, sharded, { recursive: true });
    const names = Object.keys(JSON.parse(fs.readFileSync(path.join(sharded, 'model.safetensors')).subarray(8, 8 + Number(fs.readFileSync(path.join(sharded, 'model.safetensors')).readBigUInt64LE(0))).toString('utf8'))).filter((n) => n !== '__metadata__');
    fs.renameSync(path.join(sharded, 'model.safetensors'), path.join(sharded, 'model-00001-of-00002.safetensors'));
    const weightMap = Object.fromEntries(names.map((n, i) => [n, i === 0 ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors']));
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    assertOneLineError(generate(sharded), /model-00002-of-00002\.safetensors/);
  });

  test('a config with impossible sizes, and a missing or broken tokenizer', () => {
    const generate = (dir: string) => pali(['generate', '--model', dir, '--image', image, '--prompt', 'ocr'], env);
    const variant = (name: string, change: (dir: string) => void) => {
      const dir = path.join(root, name);
      fs.cpSync(model, dir, { recursive: true });
      change(dir);
      return dir;
    };
    const editConfig = (edit: (config: Record<string, any>) => void) => (dir: string) => {
      const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      edit(config);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    };
    assertOneLineError(generate(variant('negative-layers', editConfig((c) => (c.text_config.num_hidden_layers = -1)))), /num_hidden_layers/);
    assertOneLineError(generate(variant('odd-heads', editConfig((c) => (c.vision_config.num_attention_heads = 5)))), /vision_config\.hidden_size 32 does not split into 5 attention heads/);
    assertOneLineError(generate(variant('negative-size', editConfig((c) => (c.text_config.hidden_size = -64)))), /hidden_size/);
    assertOneLineError(generate(variant('shapes-differ', editConfig((c) => (c.text_config.intermediate_size = 96)))), /intermediate_size|shape/);
    assertOneLineError(generate(variant('no-tokenizer', (dir) => fs.rmSync(path.join(dir, 'tokenizer.json')))), /tokenizer/);
    assertOneLineError(generate(variant('broken-tokenizer', (dir) => fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{ "model": '))), /tokenizer/);
  });

  test('a conversion killed at any moment never leaves a cache that is used half-written', async () => {
    const generate = (cache: string) => pali(['generate', '--model', model, '--image', image, '--prompt', 'ocr', '--max-new-tokens', '4', '--json', '--dtype', 'fp32'], { PALI_CACHE_DIR: cache });
    const reference = JSON.parse(generate(path.join(root, 'clean-cache')).stdout);
    const temporaryFolders = (cache: string) => {
      const onnxDir = path.join(cache, 'onnx');
      if (!fs.existsSync(onnxDir)) return [];
      return fs.readdirSync(onnxDir).filter((d) => d !== 'stamps').flatMap((d) => fs.readdirSync(path.join(onnxDir, d)).filter((name) => name.startsWith('.converting-')));
    };
    let killedMidway = 0;
    // Kill before the conversion starts, the moment its temporary folder appears (plus a few ms), and late.
    for (const [i, moment] of ['start', 0, 2, 5, 10, 'late'].entries()) {
      const cache = path.join(root, `killed-${i}`);
      const child = spawn(process.execPath, [PALI_CLI, 'convert', '--model', model, '--dtype', 'fp32'], { env: { ...process.env, PALI_CACHE_DIR: cache }, stdio: 'ignore' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (moment === 'start') await new Promise((resolve) => setTimeout(resolve, 5));
      else if (moment === 'late') await new Promise((resolve) => setTimeout(resolve, 2000));
      else {
        for (let waited = 0; waited < 5000 && !temporaryFolders(cache).length && child.exitCode === null; waited++) await new Promise((resolve) => setTimeout(resolve, 1));
        await new Promise((resolve) => setTimeout(resolve, moment as number));
      }
      child.kill('SIGKILL');
      await exited;
      if (temporaryFolders(cache).length) killedMidway++;
      const after = generate(cache);
      assert.equal(after.code, 0, `killed at ${moment}: ${after.stderr}`);
      assert.deepEqual(JSON.parse(after.stdout).generated_ids, reference.generated_ids, `killed at ${moment}`);
      // The killed process's temporary folder is gone once a later conversion has run.
      assert.deepEqual(temporaryFolders(cache), [], `killed at ${moment}`);
    }
    assert.ok(killedMidway >= 2, `${killedMidway} kills landed in the middle of a conversion`);
  });

  test('a full disk during conversion: one line, nothing half-written in use, and the next run converts', () => {
    const cache = path.join(root, 'full-disk-cache');
    // PALI_FAULT=disk-full makes writing a graph fail with ENOSPC, after the first one is written.
    assertOneLineError(pali(['convert', '--model', model, '--dtype', 'fp32'], { PALI_CACHE_DIR: cache, PALI_FAULT: 'disk-full' }), /the disk is full: converting .* needs up to \d+\.\d GB in .*full-disk-cache\. Free some space/);
    const converted = path.join(cache, 'onnx', fs.readdirSync(path.join(cache, 'onnx')).find((d) => d !== 'stamps')!);
    assert.deepEqual(fs.readdirSync(converted).filter((name) => name.startsWith('.converting-')), [], 'no temporary folder left');
    assert.deepEqual(fs.readdirSync(path.join(converted, 'onnx')).filter((name) => name.endsWith('.onnx')), [], 'no graph in place');
    const after = pali(['generate', '--model', model, '--image', image, '--prompt', 'ocr', '--max-new-tokens', '2', '--json', '--dtype', 'fp32'], { PALI_CACHE_DIR: cache });
    assert.equal(after.code, 0, after.stderr);
  });

  test('a broken image and a missing one', () => {
    const broken = path.join(root, 'broken.jpg');
    fs.writeFileSync(broken, 'not a jpeg at all');
    assertOneLineError(pali(['generate', '--model', model, '--image', broken, '--prompt', 'ocr'], env), /broken\.jpg/);
    assertOneLineError(pali(['caption', path.join(root, 'missing.png'), '--model', model], env), /missing\.png/);
  });

  test('hostile images from the generated corpus, and --max-image-pixels', async () => {
    const { inputs } = await hostileImages(root);
    const sample = ['empty.png', 'truncated-15of30.jpeg', 'bomb-100000x100000.png', 'billion-laughs.svg', 'text-named.png', '0x0.png'];
    for (const name of sample) {
      const file = path.join(root, name);
      fs.writeFileSync(file, inputs.find((input) => input.name === name)!.bytes);
      assertOneLineError(pali(['caption', file, '--model', model], env), new RegExp(name.replace(/\./g, '\\.')));
    }
    assertOneLineError(pali(['caption', image, '--model', model, '--max-image-pixels', '399'], env), /ok\.png is too large \(over 399 pixels\)/);
    assertOneLineError(pali(['caption', image, '--model', model, '--max-image-pixels', '0'], env), /--max-image-pixels/);
    assert.equal(pali(['caption', image, '--model', model, '--max-image-pixels', '400', '--max-new-tokens', '2'], env).code, 0);
  });

  test('prompts and parameters: answered, or refused in one line before any work', () => {
    const run = (...args: string[]) => pali(['generate', '--model', model, '--image', image, '--json', ...args], env);
    const answered = (result: ReturnType<typeof run>, tokens?: number) => {
      assert.equal(result.code, 0, result.stderr);
      const output = JSON.parse(result.stdout);
      if (tokens !== undefined) assert.equal(output.generated_ids.length, tokens);
      return output;
    };
    // An empty prompt is PaliGemma's prefix with no task text; control characters are text like any other
    // (NUL cannot travel in argv; the server takes it, as any JSON string).
    answered(run('--prompt', '', '--max-new-tokens', '3'), 3);
    answered(run('--prompt', 'caption en\u0001\u0007\u001b[31m\r', '--max-new-tokens', '3'), 3);
    answered(run('--prompt', 'ocr', '--max-new-tokens', '1'), 1);
    assertOneLineError(run('--prompt', 'ocr', '--max-new-tokens', '0'), /--max-new-tokens must be an integer of at least 1/);
    assertOneLineError(run('--prompt', 'ocr', '--max-new-tokens', '1e9'), /max_new_tokens \(1000000000\) exceed the model's 8192 positions/);
    // A 100 kB prompt: too long for a command line (onnxruntime-node crashes on those), and too many tokens.
    const long = 'answer en ' + 'why '.repeat(25_000);
    assertOneLineError(run('--prompt', long, '--max-new-tokens', '4'), /the command line is \d+ characters long .*--prompt-file/);
    const promptFile = path.join(root, 'long-prompt.txt');
    fs.writeFileSync(promptFile, `${long}\n`);
    assertOneLineError(run('--prompt-file', promptFile, '--max-new-tokens', '4'), /the prompt \(\d+ tokens with the image\) and max_new_tokens \(4\) exceed the model's 8192 positions/);
    fs.writeFileSync(promptFile, 'caption en\n');
    assert.deepEqual(answered(run('--prompt-file', promptFile, '--max-new-tokens', '2')).prompt_ids, answered(run('--prompt', 'caption en', '--max-new-tokens', '2')).prompt_ids);
    assertOneLineError(run('--prompt', 'ocr', '--temperature=-1'), /--temperature must be a non-negative number/);
    assertOneLineError(run('--prompt', 'ocr', '--temperature', 'NaN'), /--temperature/);
    assertOneLineError(run('--prompt', 'ocr', '--temperature', '0.7', '--top-p', '0'), /top_p must be above 0 and at most 1, not 0/);
    assertOneLineError(run('--prompt', 'ocr', '--temperature', '0.7', '--top-p', '1.5'), /top_p must be above 0 and at most 1, not 1\.5/);
    assertOneLineError(run('--prompt', 'ocr', '--temperature', '0.7', '--top-k=-3'), /--top-k must be an integer of at least 0/);
    answered(run('--prompt', 'ocr', '--temperature', '1e6', '--top-k', '1', '--seed', '9', '--max-new-tokens', '2'), 2);
  });

  test('bad flags and commands', () => {
    assertOneLineError(pali(['generate', '--model', model, '--image', image, '--prompt', 'ocr', '--dtype', 'int3'], env), /--dtype/);
    assertOneLineError(pali(['generate', '--model', model, '--image', image, '--prompt', 'ocr', '--max-new-tokens', 'many'], env), /--max-new-tokens/);
    assertOneLineError(pali(['generate', '--model', model, '--image', image, '--prompt', 'ocr', '--device', 'tpu'], env), /device/);
    assertOneLineError(pali(['generate', '--model', model, '--image', image], env), /--prompt/);
    assertOneLineError(pali(['caption', image], { ...env, PALI_MODEL: '' }), /PALI_MODEL/);
    assertOneLineError(pali(['frobnicate'], env), /unknown command/);
    assertOneLineError(pali(['forge', '--preset', 'huge', '--out', path.join(root, 'x')], env), /unknown preset/);
  });
});
