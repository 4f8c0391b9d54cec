/**
 * Applying a layer while it downloads is applyLayerSource in apply.ts (one pipeline for files and
 * streams); these names are kept for the pull's unpacker, which imports them from here.
 */
export { applyLayerSource as applyLayerStream, type ApplyLayerSourceOptions as ApplyStreamOptions } from './apply.js';
