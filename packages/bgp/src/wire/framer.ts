/**
 * Splits a TCP byte stream into BGP messages. One growing buffer plus a read offset, frames
 * returned as views (no copy per message); compaction only when the consumed part dominates.
 */

import { HEADER_LENGTH, MAX_MESSAGE_LENGTH } from './constants.ts';
import { checkHeader } from './messages.ts';

export class MessageFramer {
  #buf = new Uint8Array(65536);
  #start = 0;
  #end = 0;
  /** 4096 until RFC 8654 extended messages are negotiated. */
  maxMessageLength = MAX_MESSAGE_LENGTH;

  /**
   * Append bytes and return every complete message. Throws BgpError on a bad header
   * (RFC 4271 §6.1); returned frames stay valid until the next push().
   */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#append(chunk);
    const frames: Uint8Array[] = [];
    while (this.#end - this.#start >= HEADER_LENGTH) {
      const len = checkHeader(this.#buf, this.#start, this.maxMessageLength);
      if (this.#end - this.#start < len) break;
      frames.push(this.#buf.subarray(this.#start, this.#start + len));
      this.#start += len;
    }
    return frames;
  }

  get buffered(): number {
    return this.#end - this.#start;
  }

  #append(chunk: Uint8Array): void {
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
    }
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      // Frames handed out earlier are views into the old buffer, so always copy into a new one.
      const next = new Uint8Array(Math.max(65536, (live + chunk.length) * 2));
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}
