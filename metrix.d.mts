// Types of `import ... from 'panoptic/metrix'` (metrix.mjs): the names of metrix.d.ts, and the
// whole module as the default export.
import * as metrix from './metrix.js';

export * from './metrix.js';
export default metrix;
