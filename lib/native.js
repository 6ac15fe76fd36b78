'use strict';

// The native addon and the process-wide memory the JS recorders share with it.

const binding = require('./addon');

const layout = binding.layout();

module.exports = {
  NativeEngine: binding.NativeEngine,
  intervalIndex: binding.intervalIndex,
  // Cell i holds the current interval number of the grid of the instance whose engine has cell i;
  // a native thread updates it at each boundary (crates/panoptic-core/src/clock.rs).
  clockCells: binding.clockCells(),
  PAGE_SLOTS: layout.pageSlots,
  // Slot i is in page i >> PAGE_SHIFT, at i & PAGE_MASK (pages are a power of two long).
  PAGE_SHIFT: Math.log2(layout.pageSlots),
  PAGE_MASK: layout.pageSlots - 1,
  BATCH_LENGTH: layout.batchLength,
  RUN_HEADER: layout.runHeader,
  // What a series aggregates: NativeEngine.define's kind (SeriesKind.Counter, ...).
  SeriesKind: binding.SeriesKind,
};
