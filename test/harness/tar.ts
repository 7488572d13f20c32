/**
 * A minimal POSIX ustar archive holding one regular file: image layers are tar streams
 * (image-spec layer.md), and a real tar keeps test images readable by real tools (crane export, cosign).
 */

const BLOCK_BYTES = 512;
/** Two zero blocks end a tar archive (POSIX pax/ustar). */
const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK_BYTES);

export function tarWithOneFile(name: string, content: Buffer): Buffer {
  const padding = Buffer.alloc((BLOCK_BYTES - (content.length % BLOCK_BYTES)) % BLOCK_BYTES);
  return Buffer.concat([ustarHeader(name, content.length), content, padding, END_OF_ARCHIVE]);
}

/** Header fields at their ustar offsets; numbers are NUL-terminated octal, mtime 0 for reproducibility. */
function ustarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(BLOCK_BYTES);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(0o644, 8), 100);
  header.write(octal(0, 8), 108); // uid
  header.write(octal(0, 8), 116); // gid
  header.write(octal(size, 12), 124);
  header.write(octal(0, 12), 136); // mtime
  header.write('0', 156); // typeflag: regular file
  header.write('ustar\u000000', 257); // magic "ustar\0" then version "00"
  // The checksum is computed with its own field read as eight spaces.
  header.fill(' ', 148, 156);
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  header.write(`${checksum.toString(8).padStart(6, '0')}\u0000 `, 148);
  return header;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}
