/**
 * CRC-32 (IEEE 802.3, the polynomial of PNG and zlib), used for PNG chunk checks and the
 * per-tensor checksums of checkpoints.
 *
 * @module
 */

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `bytes` (continuing from `crc`, default a fresh start), as an unsigned integer. */
export const crc32 = (bytes: Uint8Array, crc = 0): number => {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

/** CRC-32 of the bytes of a typed array (its own view, little-endian as stored). */
export const crc32Of = (data: ArrayBufferView): number =>
  crc32(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));

/** CRC-32 as 8 lowercase hex digits. */
export const crc32Hex = (n: number): string => (n >>> 0).toString(16).padStart(8, "0");
