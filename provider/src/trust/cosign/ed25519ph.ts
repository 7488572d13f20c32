/**
 * Ed25519ph verification (RFC 8032 §5.1, "Ed25519ph" with an empty context). sigstore's Go signer uses
 * it for Ed25519 keys (`signature.LoadDefaultSignerVerifier` → ED25519_PH), so that is what cosign v3
 * writes for an imported Ed25519 key; node's crypto implements only pure Ed25519. The arithmetic is the
 * RFC's reference algorithm on BigInt (extended coordinates, complete addition). Only public data is
 * processed here, so constant time is not needed.
 */
import { createHash } from 'node:crypto';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const D = mod(-121665n * inverse(121666n));
const SQRT_M1 = power(2n, (P - 1n) / 4n);
/** dom2(1, "") (§2): the prefix that separates Ed25519ph from pure Ed25519. */
const DOM2_PH = Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions'), Buffer.from([1, 0])]);

type Point = readonly [x: bigint, y: bigint, z: bigint, t: bigint];

const BASE: Point = (() => {
  const x = 15112221349535400772501151409588531511454012693041857206046113283949847762202n;
  const y = 46316835694926478169428394003475163141307993866256225615783033603165251855960n;
  return [x, y, 1n, mod(x * y)];
})();
const IDENTITY: Point = [0n, 1n, 1n, 0n];

/** Whether `signature` is an Ed25519ph signature over `message` by the 32-byte `publicKey`. */
export function verifyEd25519ph(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const a = decodePoint(publicKey);
  const rBytes = signature.subarray(0, 32);
  const r = decodePoint(rBytes);
  const s = littleEndian(signature.subarray(32));
  if (a === undefined || r === undefined || s >= L) return false;
  const prehash = createHash('sha512').update(message).digest();
  const k = mod(
    littleEndian(
      createHash('sha512').update(DOM2_PH).update(rBytes).update(publicKey).update(prehash).digest(),
    ),
    L,
  );
  // §5.1.7 step 3, cofactorless as Go's crypto/ed25519 checks it: [S]B = R + [k]A.
  return equal(multiply(BASE, s), add(r, multiply(a, k)));
}

function decodePoint(bytes: Buffer): Point | undefined {
  const copy = Buffer.from(bytes);
  const sign = (copy[31] ?? 0) >> 7;
  copy[31] = (copy[31] ?? 0) & 0x7f;
  const y = littleEndian(copy);
  if (y >= P) return undefined;
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * v ** 3n * power(u * v ** 7n, (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
  else if (vx2 !== u) return undefined;
  if (x === 0n && sign === 1) return undefined;
  if (Number(x & 1n) !== sign) x = P - x;
  return [x, y, 1n, mod(x * y)];
}

function add([x1, y1, z1, t1]: Point, [x2, y2, z2, t2]: Point): Point {
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(t1 * 2n * D * t2);
  const d = mod(z1 * 2n * z2);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function multiply(point: Point, scalar: bigint): Point {
  let result = IDENTITY;
  let addend = point;
  for (let n = scalar; n > 0n; n >>= 1n) {
    if (n & 1n) result = add(result, addend);
    addend = add(addend, addend);
  }
  return result;
}

function equal([x1, y1, z1]: Point, [x2, y2, z2]: Point): boolean {
  return mod(x1 * z2 - x2 * z1) === 0n && mod(y1 * z2 - y2 * z1) === 0n;
}

function littleEndian(bytes: Buffer): bigint {
  return BigInt(`0x${Buffer.from(bytes).reverse().toString('hex') || '0'}`);
}

function mod(a: bigint, m = P): bigint {
  const r = a % m;
  return r >= 0n ? r : r + m;
}

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = mod(result * b);
    b = mod(b * b);
  }
  return result;
}

function inverse(a: bigint): bigint {
  return power(a, P - 2n);
}
