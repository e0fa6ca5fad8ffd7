/**
 * The VQ-VAE decoder that turns PaliGemma's 16 <seg> codes into a 64x64 mask, as an ONNX graph built with
 * our graph builder from big_vision's `vae-oid.npz` (PyTorch-layout weights). Shapes and activations follow
 * big_vision's evaluators/proj/paligemma/transfers/segmentation.py:
 *   codebook lookup (128 codes x 512) -> 4x4 grid, row by row -> 1x1 conv to 128 + ReLU
 *   -> 2 residual blocks (3x3 conv, ReLU, 3x3 conv, ReLU, 1x1 conv, plus the input)
 *   -> 4 transposed convs, kernel 4, stride 2 (Flax padding 2 with transpose_kernel = PyTorch padding 1),
 *      128 -> 128 -> 64 -> 32 -> 16 channels, each followed by ReLU: 4 -> 8 -> 16 -> 32 -> 64
 *   -> 1x1 conv to one channel: values around [-1, 1], the mask where > 0.
 */
import type * as ort from 'onnxruntime-node';
import { UserError } from '../../common/errors.js';
import { GraphBuilder } from '../onnx/graphBuilder.js';
import { InlineWeightStore } from '../onnx/weightStore.js';
import { onnxRuntime, runtimeKind, tensor } from '../runtime/onnxRuntime.js';
import type { NpyArray } from './npz.js';

export const CODEBOOK_KEY = '_vq_vae._embedding';
export const CODEBOOK_SIZE = 128;
export const MASK_SIZE = 64;
/** The decoder's layers by their npz names: convs, residual blocks' convs, then transposed convs. */
export const DECODER_CONVS = ['decoder.0', 'decoder.12'];
export const RESBLOCK_CONVS = ['decoder.2.net.0', 'decoder.2.net.2', 'decoder.2.net.4', 'decoder.3.net.0', 'decoder.3.net.2', 'decoder.3.net.4'];
export const TRANSPOSED_CONVS = ['decoder.4', 'decoder.6', 'decoder.8', 'decoder.10'];

function need(weights: Map<string, NpyArray>, key: string, rank: number): NpyArray {
  const array = weights.get(key);
  if (!array) throw new UserError(`the mask VQ-VAE has no ${key}: is this big_vision's vae-oid.npz?`);
  if (array.shape.length !== rank) throw new UserError(`the mask VQ-VAE's ${key} has shape [${array.shape}], expected ${rank} dimensions`);
  return array;
}

export function buildMaskDecoderGraph(weights: Map<string, NpyArray>): Uint8Array {
  const g = new GraphBuilder('paligemma_mask_decoder', new InlineWeightStore());
  const param = (key: string, rank: number) => {
    const array = need(weights, key, rank);
    return g.weight(key, array.data, array.shape);
  };
  const codebook = need(weights, CODEBOOK_KEY, 2);
  if (codebook.shape[0] !== CODEBOOK_SIZE) throw new UserError(`the mask VQ-VAE's codebook has ${codebook.shape[0]} codes, expected ${CODEBOOK_SIZE}`);
  const dim = codebook.shape[1]!;
  const conv = (x: string, key: string, pad: number) => g.op('Conv', [x, param(`${key}.weight`, 4), param(`${key}.bias`, 1)], { pads: [pad, pad, pad, pad], strides: [1, 1] });
  const relu = (x: string) => g.op('Relu', [x]);

  const codes = g.input('codes', 'int64', ['batch', 16]);
  // [batch, 16, dim] -> [batch, 4, 4, dim] (token t at row t / 4, column t % 4) -> channels first.
  const embedded = g.op('Gather', [g.weight(CODEBOOK_KEY, codebook.data, codebook.shape), codes], { axis: 0 });
  const grid = g.op('Transpose', [g.op('Reshape', [embedded, g.int64s([-1, 4, 4, dim])])], { perm: [0, 3, 1, 2] });
  let x = relu(conv(grid, 'decoder.0', 0));
  for (const block of ['decoder.2.net', 'decoder.3.net']) {
    const inner = conv(relu(conv(relu(conv(x, `${block}.0`, 1)), `${block}.2`, 1)), `${block}.4`, 0);
    x = g.op('Add', [inner, x]);
  }
  for (const key of TRANSPOSED_CONVS) {
    x = relu(g.op('ConvTranspose', [x, param(`${key}.weight`, 4), param(`${key}.bias`, 1)], { kernel_shape: [4, 4], strides: [2, 2], pads: [1, 1, 1, 1] }));
  }
  const mask = g.op('Squeeze', [conv(x, 'decoder.12', 0), g.int64s([1])]);
  g.output(mask, 'masks', 'float32', ['batch', MASK_SIZE, MASK_SIZE]);
  return g.toModelBytes();
}

/** The decoder in an onnxruntime session; `decode` takes codes [n][16] and gives n 64x64 masks. */
export class MaskDecoder {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async create(weights: Map<string, NpyArray>): Promise<MaskDecoder> {
    return new MaskDecoder(await onnxRuntime().InferenceSession.create(buildMaskDecoderGraph(weights), { executionProviders: [runtimeKind() === 'wasm' ? 'wasm' : 'cpu'] }));
  }

  async decode(codes: number[][]): Promise<Float32Array[]> {
    if (!codes.length) return [];
    const input = tensor('int64', BigInt64Array.from(codes.flat().map(BigInt)), [codes.length, 16]);
    const output = (await this.session.run({ codes: input })).masks!;
    const data = output.data as Float32Array;
    const size = MASK_SIZE * MASK_SIZE;
    return codes.map((_, i) => data.slice(i * size, (i + 1) * size));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
