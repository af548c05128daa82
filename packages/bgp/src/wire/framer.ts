/**
 * Splits a TCP byte stream into BGP messages. Complete messages are returned as views into the
 * chunk they arrived in (no copy); only a message split across chunks is copied, into a buffer
 * the size of that message. An idle session holds no buffer at all, which matters with hundreds
 * of sessions (a reflector's clients).
 */

import { HEADER_LENGTH, MAX_MESSAGE_LENGTH } from './constants.ts';
import { checkHeader } from './messages.ts';

export class MessageFramer {
  /** The start of a message cut off at the end of the previous chunk, in `#tail[0, #tailLen)`. */
  #tail: Uint8Array | undefined;
  #tailLen = 0;
  /** 4096 until RFC 8654 extended messages are negotiated. */
  maxMessageLength = MAX_MESSAGE_LENGTH;

  /**
   * Take the next chunk of the stream and return every message it completes. Throws BgpError on
   * a bad header (RFC 4271 §6.1). Frames are views into `chunk` (or into a buffer of their own),
   * so the caller must not reuse `chunk`'s memory while it holds them.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let off = 0;
    if (this.#tail) {
      off = this.#completeTail(chunk, frames);
      if (this.#tail) return frames;
    }
    const end = chunk.length;
    while (end - off >= HEADER_LENGTH) {
      const len = checkHeader(chunk, off, this.maxMessageLength);
      if (end - off < len) break;
      frames.push(chunk.subarray(off, off + len));
      off += len;
    }
    if (off < end) this.#keepTail(chunk.subarray(off));
    return frames;
  }

  /** Bytes held of a message not yet complete. */
  get buffered(): number {
    return this.#tailLen;
  }

  /** Copy the start of a split message into a buffer sized for the whole message when known. */
  #keepTail(rest: Uint8Array): void {
    const size = rest.length >= HEADER_LENGTH ? checkHeader(rest, 0, this.maxMessageLength) : HEADER_LENGTH;
    const tail = new Uint8Array(Math.max(size, rest.length));
    tail.set(rest);
    this.#tail = tail;
    this.#tailLen = rest.length;
  }

  /** Move bytes from `chunk` into the held message; returns how many of `chunk` were used. */
  #completeTail(chunk: Uint8Array, frames: Uint8Array[]): number {
    let tail = this.#tail!;
    let off = 0;
    if (this.#tailLen < HEADER_LENGTH) {
      const n = Math.min(HEADER_LENGTH - this.#tailLen, chunk.length);
      tail.set(chunk.subarray(0, n), this.#tailLen);
      this.#tailLen += n;
      off = n;
      if (this.#tailLen < HEADER_LENGTH) return off;
    }
    const len = checkHeader(tail, 0, this.maxMessageLength);
    if (tail.length < len) {
      const grown = new Uint8Array(len);
      grown.set(tail.subarray(0, this.#tailLen));
      tail = grown;
      this.#tail = grown;
    }
    const n = Math.min(len - this.#tailLen, chunk.length - off);
    tail.set(chunk.subarray(off, off + n), this.#tailLen);
    this.#tailLen += n;
    off += n;
    if (this.#tailLen === len) {
      frames.push(tail.subarray(0, len));
      this.#tail = undefined;
      this.#tailLen = 0;
    }
    return off;
  }
}
