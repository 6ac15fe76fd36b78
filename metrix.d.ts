// Type definitions for `require('panoptic/metrix')`, metrix 2.0's module. Hand-written;
// `__test__/types/` type-checks an example against them with `tsc --noEmit`.

import { EventEmitter } from 'events';

/** Tags of an instrument: any object (timers put them at the top level of their events). */
export type Tags = Record<string, unknown>;

/** 'counter' event. */
export interface CounterEvent {
  name: string;
  increment: number;
  tags?: Tags;
  /** Precise counters only: Date.now() at the increment. */
  timestamp?: number;
}

/** 'timer' event: the timer's tags and `stop`'s tags are top-level fields. */
export interface TimerEvent {
  name: string;
  /** The id `start()` returned (its Date.now()). */
  startTs: number;
  stopTs: number;
  /** Set by the default aggregator: stopTs - startTs. */
  value?: number;
  [tag: string]: unknown;
}

/** 'histogram' and 'gauge' events. */
export interface ValueEvent {
  name: string;
  value: number;
  tags?: Tags;
}

export interface Counter {
  /** Adds n (default 1; 0 adds 0). n must be a finite number. */
  incr(n?: number | null): void;
  /** Subtracts n (default 1; 0 subtracts 0). */
  decr(n?: number | null): void;
}

export interface Timer {
  /** An id to hand to `stop` (Date.now(); NullTimer gives 0). */
  start(): number;
  /** Emits the event of the time since `start`; throws without an id. Tags may not set name, startTs, stopTs or value. */
  stop(id: number, tags?: Tags | null): void;
}

export interface Histogram {
  /** Records n (default 0). */
  add(n?: number | null): void;
}

export interface Gauge {
  /** Reports n (default 0). */
  update(n?: number | null): void;
}

export type CounterFactory = (recorder: Recorder, name: string, initialValue: number, tags?: Tags | null) => Counter;
export type TimerFactory = (recorder: Recorder, name: string, tags?: Tags | null) => Timer;
export type HistogramFactory = (recorder: Recorder, name: string, tags?: Tags | null) => Histogram;
export type GaugeFactory = (recorder: Recorder, name: string, initialValue: number, tags?: Tags | null) => Gauge;

/** How a Recorder makes instruments (each missing one: DEFAULT's). */
export interface RecorderConfig {
  counter?: CounterFactory | null;
  timer?: TimerFactory | null;
  histogram?: HistogramFactory | null;
  gauge?: GaugeFactory | null;
  /** Between a scope and a name. Default '/'. */
  separator?: string | null;
}

/** What an aggregator keeps: histograms (anything with `snapshot()`), counters and gauges by name. */
export interface Snapshottable { snapshot(): HistogramSnapshot }
export type Histograms = Record<string, Snapshottable>;
export type Handler<E> = (event: E, histograms: Histograms, counters: Record<string, number>, gauges: Record<string, number>) => void;

/** `fn(counters, histogramSnapshots)` returning `[name, value, name, value, ...]` (or nothing). */
export type Composite = (counters: Record<string, number>, histograms: Record<string, HistogramSnapshot>) => unknown[] | null | undefined | void;

/** How an Aggregator aggregates events (each missing handler: DEFAULT's). */
export interface AggregatorConfig {
  counter?: Handler<CounterEvent> | null;
  timer?: Handler<TimerEvent> | null;
  histogram?: Handler<ValueEvent> | null;
  gauge?: Handler<ValueEvent> | null;
  composites?: Composite[] | null;
}

export interface Config {
  recorder: RecorderConfig;
  aggregator: AggregatorConfig;
}

/** `{ min, max, [overflow], p50, ... }`; `{}` for an empty histogram. */
export interface HistogramSnapshot {
  min?: number;
  max?: number;
  /** Bucketed histograms: values above `max`, when there are any. */
  overflow?: number;
  [percentile: string]: number | undefined;
}

export interface Report {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  histograms: Record<string, HistogramSnapshot>;
}

/** A recorder's view whose names are prefixed `scope + separator`. */
export interface Scope {
  scope(name: string): Scope;
  counter(name: string, initialValue?: number | null, tags?: Tags | null): Counter;
  timer(name: string, tags?: Tags | null): Timer;
  histogram(name: string, tags?: Tags | null): Histogram;
  gauge(name: string, initialValue?: number | null, tags?: Tags | null): Gauge;
  on(event: string, listener: (event: any) => void): Recorder;
  readonly separator: string;
}

export class Recorder extends EventEmitter {
  constructor(config?: RecorderConfig | null);
  readonly separator: string;
  counter(name: string, initialValue?: number | null, tags?: Tags | null): Counter;
  timer(name: string, tags?: Tags | null): Timer;
  histogram(name: string, tags?: Tags | null): Histogram;
  gauge(name: string, initialValue?: number | null, tags?: Tags | null): Gauge;
  scope(name: string): Scope;
  on(event: 'counter', listener: (event: CounterEvent) => void): this;
  on(event: 'timer', listener: (event: TimerEvent) => void): this;
  on(event: 'histogram' | 'gauge', listener: (event: ValueEvent) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class Aggregator {
  constructor(recorder: Recorder | Scope, config?: AggregatorConfig | null);
  /** Copies of the current state; composites add their pairs to `counters`. */
  report(): Report;
  /** Forgets counters and histograms (not gauges). */
  clear(): void;
  clearCounters(): void;
  clearHistograms(): void;
  clearGauges(): void;
}

export interface BucketedOptions {
  /** Largest value counted in a bucket (larger ones count in `overflow`). Default 3600000; 0 means the default. */
  max?: number | null;
  /** Relative error of a quantile. Default 0.005; 0 means the default. */
  error?: number | null;
  /** Quantiles in [0, 1]. Default [0.5, 0.9, 0.99]. */
  quantiles?: readonly number[] | null;
}

export interface StreamingOptions {
  /** Quantiles in [0, 1]. Default [0.5, 0.9, 0.99]. */
  quantiles?: readonly number[] | null;
  /** Seed of the coin flips (SplitMix64): an integer in [0, 2^53) or a BigInt in [0, 2^64). Default random. */
  seed?: number | bigint | null;
}

/** metrix's bucketed histogram; its state lives in Rust. */
export class BucketedHistogram implements Snapshottable {
  constructor(opts?: BucketedOptions | null);
  /** Records a finite number. */
  add(x: number): void;
  snapshot(): HistogramSnapshot;
  clear(): void;
}

/** metrix's Frugal-2U streaming histogram; its state lives in Rust. */
export class StreamingHistogram implements Snapshottable {
  constructor(opts?: StreamingOptions | null);
  /** Records a finite number. */
  add(x: number): void;
  snapshot(): HistogramSnapshot;
  clear(): void;
}

/**
 * A factory of the module: a plain function, as in metrix, so `new factory(...)` (which code
 * written for metrix may use) works too and returns what `factory(...)` returns.
 */
export interface Factory<A extends unknown[], R> {
  (...args: A): R;
  new (...args: A): R;
}

export const config: { DEFAULT: Config; DISABLE: Config };
export const recorder: { DISABLE: Recorder };
export const createRecorder: Factory<[config?: RecorderConfig | null], Recorder>;
export const createAggregator: Factory<[recorder: Recorder | Scope, config?: AggregatorConfig | null], Aggregator>;

export const counter: {
  createDefault: Factory<[recorder: Recorder, name: string, initialValue?: number | null, tags?: Tags | null], Counter>;
  createDisable: Factory<[], Counter>;
  createPrecise: Factory<[recorder: Recorder, name: string, initialValue?: number | null, tags?: Tags | null], Counter>;
};
export const histogram: {
  createBucketHistogram: Factory<[opts?: BucketedOptions | null], BucketedHistogram>;
  createStreamingHistogram: Factory<[opts?: StreamingOptions | null], StreamingHistogram>;
};
export const timer: {
  createDefault: Factory<[recorder: Recorder, name: string, tags?: Tags | null], Timer>;
  createDisable: Factory<[], Timer>;
  createNoTags: Factory<[recorder: Recorder, name: string, tags?: Tags | null], Timer>;
};
/** Gauge factories take `(recorder, name, tags)` as in metrix, or `(recorder, name, initialValue, tags)` as a Recorder calls them. */
export const gauge: {
  createDefault: Factory<[recorder: Recorder, name: string, initialValueOrTags?: number | Tags | null, tags?: Tags | null], Gauge>;
  createPrecise: Factory<[recorder: Recorder, name: string, initialValueOrTags?: number | Tags | null, tags?: Tags | null], Gauge>;
  createDisable: Factory<[], Gauge>;
};

export const NullCounter: Readonly<Counter>;
export const NullTimer: Readonly<Timer>;
export const NullHistogram: Readonly<Histogram>;
export const NullGauge: Readonly<Gauge>;
