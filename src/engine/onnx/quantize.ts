/**
 * Block-wise weight quantization in the layout of com.microsoft's MatMulNBits: for a weight W [N, K] (HF's
 * [out, in]), each row is cut into blocks of `blockSize` along K; each block gets a float scale and an
 * unsigned zero point of `bits` bits. 4-bit values and zero points are stored two per byte, low nibble
 * first; 8-bit ones one per byte. Dequantized: (q - zero) * scale.
 */

export type QuantizationBits = 4 | 8;

export interface QuantizedWeight {
  bits: QuantizationBits;
  /** [N, blocksPerRow, blockSize * bits / 8] */
  packed: Uint8Array;
  /** [N * blocksPerRow] */
  scales: Float32Array;
  /** [N * ceil(blocksPerRow * bits / 8)] */
  zeroPoints: Uint8Array;
  blocksPerRow: number;
}

/** Bytes of zero points per row: MatMulNBits packs them as tightly as the values. */
export function zeroPointBytesPerRow(blocksPerRow: number, bits: QuantizationBits): number {
  return Math.ceil((blocksPerRow * bits) / 8);
}

/** Writes `value` as the `index`-th `bits`-wide field of `bytes` (fields never straddle a byte). */
function putField(bytes: Uint8Array, byteOffset: number, index: number, value: number, bits: QuantizationBits): void {
  const perByte = 8 / bits;
  const byte = byteOffset + Math.floor(index / perByte);
  bytes[byte] = bytes[byte]! | (value << ((index % perByte) * bits));
}

export function quantizeBlockwise(weight: Float32Array, n: number, k: number, bits: QuantizationBits, blockSize = 32): QuantizedWeight {
  const levels = 2 ** bits - 1;
  const blocksPerRow = Math.ceil(k / blockSize);
  const bytesPerBlock = (blockSize * bits) / 8;
  const packed = new Uint8Array(n * blocksPerRow * bytesPerBlock);
  const scales = new Float32Array(n * blocksPerRow);
  const zeroBytesPerRow = zeroPointBytesPerRow(blocksPerRow, bits);
  const zeroPoints = new Uint8Array(n * zeroBytesPerRow);
  for (let row = 0; row < n; row++) {
    for (let block = 0; block < blocksPerRow; block++) {
      const start = row * k + block * blockSize;
      const end = row * k + Math.min(k, (block + 1) * blockSize);
      // The range always includes 0 so that 0 is exactly representable (as ORT's quantizer does).
      let min = 0;
      let max = 0;
      for (let i = start; i < end; i++) {
        const w = weight[i]!;
        if (w < min) min = w;
        if (w > max) max = w;
      }
      const scale = (max - min) / levels || 1;
      const zero = Math.min(levels, Math.max(0, Math.round(-min / scale)));
      const blockIndex = row * blocksPerRow + block;
      scales[blockIndex] = scale;
      putField(zeroPoints, row * zeroBytesPerRow, block, zero, bits);
      for (let i = 0; i < blockSize; i++) {
        const source = start + i;
        const q = source < end ? Math.min(levels, Math.max(0, Math.round(weight[source]! / scale) + zero)) : zero;
        putField(packed, blockIndex * bytesPerBlock, i, q, bits);
      }
    }
  }
  return { bits, packed, scales, zeroPoints, blocksPerRow };
}

/**
 * Symmetric int8 weights with one scale per output channel, for the integer GEMM: W [N, K] (HF's [out, in])
 * becomes q [K, N] (the GEMM's B layout) with W[n, k] ~ q[k, n] * scales[n], q in [-127, 127] (-128
 * is left out so that the range is symmetric and negation is exact).
 */
export interface ChannelQuantizedWeight {
  /** [K, N] */
  values: Int8Array;
  /** [N] */
  scales: Float32Array;
}

export function quantizePerChannelInt8(weight: Float32Array, n: number, k: number): ChannelQuantizedWeight {
  const values = new Int8Array(n * k);
  const scales = new Float32Array(n);
  for (let row = 0; row < n; row++) {
    let maxAbs = 0;
    for (let col = 0; col < k; col++) maxAbs = Math.max(maxAbs, Math.abs(weight[row * k + col]!));
    const scale = maxAbs / 127 || 1;
    scales[row] = scale;
    for (let col = 0; col < k; col++) values[col * n + row] = Math.max(-127, Math.min(127, Math.round(weight[row * k + col]! / scale)));
  }
  return { values, scales };
}
