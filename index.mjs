// `import ... from 'panoptic'`: the CommonJS module (index.js) as the default export, and each
// documented static as a named export (Node cannot detect names on `module.exports = Panopticon`).
// index.d.mts declares the same names.
import Panopticon from './index.js';

export default Panopticon;
export { Panopticon };
export const { registerMethod, getLoggerMethodNames, count, trace, filter } = Panopticon;
