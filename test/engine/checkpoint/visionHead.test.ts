/**
 * vision_use_head: true. HF loads such a checkpoint, builds SigLIP's pooling head, and never uses it:
 * PaliGemma reads the vision tower's last hidden state. We load it too, and ignore the head.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { readSafetensorsHeader, readTensorBytes, writeSafetensors, type SafetensorsDtype, type TensorToWrite } from '../../../src/engine/checkpoint/safetensors.js';
import { loadModel } from '../../../src/engine/model.js';
import { encodeImage } from '../../../src/engine/paligemma/inputs.js';
import { generate } from '../../../src/engine/generate/generate.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';

/** SiglipMultiheadAttentionPoolingHead's parameters for hidden size D and MLP size I. */
function poolingHeadTensors(D: number, I: number): { name: string; shape: number[] }[] {
  const prefix = 'vision_tower.vision_model.head';
  return [
    { name: `${prefix}.probe`, shape: [1, 1, D] },
    { name: `${prefix}.attention.in_proj_weight`, shape: [3 * D, D] },
    { name: `${prefix}.attention.in_proj_bias`, shape: [3 * D] },
    { name: `${prefix}.attention.out_proj.weight`, shape: [D, D] },
    { name: `${prefix}.attention.out_proj.bias`, shape: [D] },
    { name: `${prefix}.layernorm.weight`, shape: [D] },
    { name: `${prefix}.layernorm.bias`, shape: [D] },
    { name: `${prefix}.mlp.fc1.weight`, shape: [I, D] },
    { name: `${prefix}.mlp.fc1.bias`, shape: [I] },
    { name: `${prefix}.mlp.fc2.weight`, shape: [D, I] },
    { name: `${prefix}.mlp.fc2.bias`, shape: [D] },
  ];
}

describe('a checkpoint with vision_use_head: true', () => {
  test('loads, and gives the logits of the same checkpoint without the head', async () => {
    const root = tempDir('vision-head');
    const plain = forgeTiny(path.join(root, 'plain'), 'tiny');
    const headed = forgeTiny(path.join(root, 'headed'), 'tiny');
    const configFile = path.join(headed.checkpointDir, 'config.json');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    config.vision_config.vision_use_head = true;
    fs.writeFileSync(configFile, JSON.stringify(config));
    const weightsFile = path.join(headed.checkpointDir, 'model.safetensors');
    const tensors: TensorToWrite[] = readSafetensorsHeader(weightsFile).map((entry) => {
      const bytes = readTensorBytes(entry);
      return { name: entry.name, dtype: entry.dtype as SafetensorsDtype, shape: entry.shape, chunks: () => [bytes] };
    });
    const { hidden_size: D, intermediate_size: I } = config.vision_config;
    for (const { name, shape } of poolingHeadTensors(D, I)) {
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
      tensors.push({ name, dtype: 'F32', shape, chunks: () => [new Uint8Array(values.buffer)] });
    }
    writeSafetensors(`${weightsFile}.tmp`, tensors);
    fs.renameSync(`${weightsFile}.tmp`, weightsFile);

    const image = await writeGradientPng(path.join(root, 'image.png'), 40, 30);
    const firstLogits = async (checkpointDir: string, cacheRoot: string) => {
      const model = await loadModel(checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot });
      try {
        return (await generate(model, await encodeImage(model, image), 'caption en', { maxNewTokens: 1, keepFirstLogits: true })).firstLogits!;
      } finally {
        await model.release();
      }
    };
    assert.deepEqual(await firstLogits(headed.checkpointDir, headed.cacheRoot), await firstLogits(plain.checkpointDir, plain.cacheRoot));
  });
});
