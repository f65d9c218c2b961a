import { createSign, createVerify, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';

/** An RSA key pair that signs the emulated Entra ID tokens; the AMR emulator verifies with the public half. */
export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function createSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: randomUUID(), privateKey, publicKey };
}

const base64url = (value: Buffer | string) => Buffer.from(value).toString('base64url');

export type JwtClaims = Record<string, unknown>;

/** Signs claims as an RS256 JWT. */
export function signJwt(claims: JwtClaims, key: SigningKey): string {
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: key.kid }));
  const payload = base64url(JSON.stringify(claims));
  const signature = createSign('RSA-SHA256').update(`${header}.${payload}`).sign(key.privateKey);
  return `${header}.${payload}.${base64url(signature)}`;
}

export type JwtVerification = { ok: true; claims: JwtClaims } | { ok: false; reason: string };

/**
 * Verifies an RS256 JWT's signature and its `aud` and `exp` claims, as Azure's Redis front end does.
 * `nowMs` is the verifier's clock.
 */
export function verifyJwt(token: string, publicKey: KeyObject, audience: string, nowMs = Date.now()): JwtVerification {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'not a JWT' };
  const [header, payload, signature] = parts as [string, string, string];
  let parsedHeader: { alg?: string };
  let claims: JwtClaims;
  try {
    parsedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: string };
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as JwtClaims;
  } catch {
    return { ok: false, reason: 'undecodable' };
  }
  if (parsedHeader.alg !== 'RS256') return { ok: false, reason: 'unexpected alg' };
  const valid = createVerify('RSA-SHA256')
    .update(`${header}.${payload}`)
    .verify(publicKey, Buffer.from(signature, 'base64url'));
  if (!valid) return { ok: false, reason: 'bad signature' };
  if (claims.aud !== audience) return { ok: false, reason: 'wrong audience' };
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}
