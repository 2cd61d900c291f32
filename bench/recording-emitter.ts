import type { Emitter, EmitResult, Family } from '../ingest/sdk';

/**
 * An emitter that delivers nothing: it hands each emitted input to `record`, which keeps what the
 * bench needs and returns the event's id. The benches use it to take the traffic a generator
 * emits as Kafka values, without a producer.
 */
export function recordingEmitter(record: (family: Family, input: object) => string): Emitter {
  let accepted = 0;
  const of =
    (family: Family) =>
    (input: object): EmitResult => {
      accepted++;
      return { id: record(family, input), accepted: true };
    };
  return {
    policy: of('policy'),
    invocation: of('invocation'),
    device: of('device'),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
    stats: () => ({ accepted, delivered: 0, dropped: 0, sendFailures: 0, buffered: 0, bufferedBytes: 0 }),
  };
}
