/**
 * Token embeddings read from the table on disk equal what the embed_tokens graph's Gather returns, for a
 * table inline in the graph (tiny models) and one in an external data file (full-size conversions).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { openCheckpoint } from '../../../src/engine/checkpoint/checkpoint.js';
import { textNames } from '../../../src/engine/checkpoint/weightNames.js';
import { buildEmbedTokens } from '../../../src/engine/paligemma/gemmaDecoder.js';
import { GraphBuilder } from '../../../src/engine/onnx/graphBuilder.js';
import { ExternalWeightStore, InlineWeightStore } from '../../../src/engine/onnx/weightStore.js';
import { findEmbeddingTable, openEmbeddingTable, sessionEmbeddings } from '../../../src/engine/paligemma/tokenEmbeddings.js';
import { forgeTiny, tempDir } from '../../helpers/fixtures.js';

const root = tempDir('token-embeddings');
const tiny = forgeTiny(root, 'tiny', 5);
const checkpoint = openCheckpoint(tiny.checkpointDir);
const vocab = checkpoint.tensors.get(textNames.embedTokens)!.shape[0]!;
const ids = [0, 2, 7, vocab - 1, 2];

for (const layout of ['inline', 'external'] as const) {
  test(`rows read from a table ${layout === 'inline' ? 'inside the graph' : 'in an external data file'} equal the graph's Gather`, async () => {
    const dir = fs.mkdtempSync(path.join(root, `${layout}-`));
    const graphFile = path.join(dir, 'embed_tokens.onnx');
    const store = layout === 'inline' ? new InlineWeightStore() : new ExternalWeightStore(`${graphFile}_data`, 'embed_tokens.onnx_data');
    // Something else first in the data file, so that the table's offset is not 0.
    if (store instanceof ExternalWeightStore) new GraphBuilder('pad', store).weight('pad', new Float32Array(3000), [3000]);
    buildEmbedTokens(checkpoint, store, vocab).save(graphFile);
    store.close();

    const location = findEmbeddingTable(graphFile);
    assert.ok(location, 'a plain Gather graph is read from disk');
    assert.equal(location.inline === undefined, layout === 'external');
    if (layout === 'external') assert.ok(location.offset! > 0);
    const table = openEmbeddingTable(location);
    const session = sessionEmbeddings(await ort.InferenceSession.create(graphFile));
    try {
      assert.deepEqual(await table.lookup(ids), await session.lookup(ids));
      await assert.rejects(table.lookup([vocab]), /outside the embedding table/);
    } finally {
      await table.close();
      await session.close();
    }
  });
}

test('a graph that is not a plain float32 Gather keeps its session', () => {
  const g = new GraphBuilder('embed_tokens', new InlineWeightStore());
  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const table = g.weight('table', new Float32Array(8 * 4), [8, 4]);
  const scaled = g.op('Mul', [g.op('Gather', [table, inputIds], { axis: 0 }), g.scalar(2)]);
  g.output(scaled, 'inputs_embeds', 'float32', ['batch', 'sequence', 4]);
  const file = path.join(root, 'scaled.onnx');
  g.save(file);
  assert.equal(findEmbeddingTable(file), null);
});
