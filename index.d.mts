// Types of `import ... from 'panoptic'` (index.mjs): the default export is the class of index.d.ts
// with its namespace of types (`Panopticon.Options`, ...); the named exports are its statics.
import Panopticon from './index.js';

export default Panopticon;
export { Panopticon };
export declare const registerMethod: typeof Panopticon.registerMethod;
export declare const getLoggerMethodNames: typeof Panopticon.getLoggerMethodNames;
export declare const count: typeof Panopticon.count;
export declare const trace: typeof Panopticon.trace;
export declare const filter: typeof Panopticon.filter;
