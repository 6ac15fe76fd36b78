#!/usr/bin/env node
'use strict';

// The `panoptic-trace` command (package.json "bin"); `panoptic-trace --help` describes it.
require('../lib/trace/cli').main(process.argv.slice(2));
