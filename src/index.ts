/** podrun's TypeScript API: CRI-shaped verbs for images and pods, typed events. */
export * from './util/errors.js';
export * from './util/events.js';
export * from './spec/index.js';
export * from './image/index.js';
export * from './runtime/index.js';
