/**
 * Webhook signatures.
 *
 * Scheme: the `X-Vigil-Signature` header is `t=<unix seconds>,v1=<hex>`, where `<hex>` is
 * HMAC-SHA256, keyed with the destination's `secret`, of `<t>.<body>`. The body is the exact
 * bytes of the request body, so a receiver must verify before it parses (or re-serialises) JSON.
 * Binding the timestamp into the MAC lets a receiver refuse old requests: a captured request
 * replayed later fails the tolerance check ({@link verifySignature}, 5 minutes by default).
 *
 * A retry of the same delivery is signed again with a new timestamp, but keeps its
 * `X-Vigil-Delivery` id. Delivery is at-least-once, so a receiver must also deduplicate on that id
 * (remembering ids for at least the tolerance window), which also defeats a replay inside the window.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The name of the signature header. */
export const SIGNATURE_HEADER = 'x-vigil-signature';
/** The name of the header with the delivery id, stable across retries of one delivery. */
export const DELIVERY_HEADER = 'x-vigil-delivery';
/** The name of the header with the change kind (`opened`, `escalated`, `resolved`). */
export const EVENT_HEADER = 'x-vigil-event';

const FORMAT = /^t=(\d{1,15}),v1=([0-9a-f]{64})$/;

function mac(secret: string, body: string | Uint8Array, timestamp: string): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/**
 * The `X-Vigil-Signature` value for a body sent at `unixSeconds`:
 * `t=<unixSeconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 */
export function signPayload(secret: string, body: string | Uint8Array, unixSeconds: number): string {
  const timestamp = String(Math.floor(unixSeconds));
  return `t=${timestamp},v1=${mac(secret, body, timestamp).toString('hex')}`;
}

/** Why a signature was refused. */
export type SignatureFailure = 'malformed' | 'mismatch' | 'stale';

/** The verdict of {@link verifySignature}. */
export type SignatureVerdict = { ok: true } | { ok: false; reason: SignatureFailure };

/**
 * Checks a signature header against the raw body, as a receiver does.
 *
 * Refuses, in this order: a header not of the form `t=<digits>,v1=<64 lower-case hex>`
 * (`malformed`); a MAC that doesn't match, compared in constant time (`mismatch`); a timestamp
 * more than `toleranceSeconds` away from `nowSeconds` in either direction (`stale`: a replay, or a
 * clock far off). A `stale` verdict therefore means the request was authentic but old.
 * @param toleranceSeconds - @defaultValue 300
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string | Uint8Array,
  nowSeconds: number,
  toleranceSeconds = 300,
): SignatureVerdict {
  const match = FORMAT.exec(header ?? '');
  const timestamp = match?.[1];
  const hex = match?.[2];
  if (timestamp === undefined || hex === undefined) return { ok: false, reason: 'malformed' };
  const expected = mac(secret, body, timestamp);
  const given = Buffer.from(hex, 'hex');
  // Both are 32 bytes here (the format fixes 64 hex digits); timingSafeEqual demands equal lengths.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'mismatch' };
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) return { ok: false, reason: 'stale' };
  return { ok: true };
}
