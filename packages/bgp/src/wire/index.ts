export * from './attributes.ts';
export * from './bgp-error.ts';
export * from './constants.ts';
export * from './framer.ts';
export * from './messages.ts';
export * from './open.ts';
export * from './prefix.ts';
