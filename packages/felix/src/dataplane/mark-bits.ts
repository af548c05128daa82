/**
 * Felix's mark-bit allocation (calico-internals §3.4): single bits taken from the configured
 * mask's lowest set bit upwards, in a fixed order, so that the default mask 0xffff0000 gives
 * accept 0x10000, pass 0x20000, drop 0x40000, scratch0 0x80000, scratch1 0x100000.
 */
export interface MarkBits {
  accept: number;
  pass: number;
  drop: number;
  scratch0: number;
  scratch1: number;
  /** Bits cleared on entry to Calico's top-level chains: accept|pass|scratch0|scratch1. */
  allCalico: number;
}

export function allocateMarkBits(mask: number): MarkBits {
  const bits: number[] = [];
  for (let bit = 0; bit < 32 && bits.length < 5; bit++) {
    const v = 2 ** bit;
    if (Math.floor(mask / v) % 2 === 1) bits.push(v);
  }
  if (bits.length < 5) {
    throw new Error(`iptablesMarkMask 0x${mask.toString(16)} has fewer than the 5 bits Felix needs`);
  }
  const [accept, pass, drop, scratch0, scratch1] = bits as [number, number, number, number, number];
  return { accept, pass, drop, scratch0, scratch1, allCalico: accept + pass + scratch0 + scratch1 };
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
