import { createKafka, createLogger, ensureTopicStates, secretsOf, type Config, type TopicState } from '../platform';

export const TOPICS_USAGE = 'usage: vigil topics ensure   (creates the missing topics: partitions, replication and retention from configuration)';

/** The lines `vigil topics ensure` prints: one per topic, and a warning per partition mismatch. */
export function describeTopics(states: readonly TopicState[]): string[] {
  const width = Math.max(...states.map((state) => state.topic.length));
  const lines = states.map((state) => `${state.topic.padEnd(width)}  ${state.state.padEnd(8)}  ${state.partitions} partitions`);
  for (const state of states) {
    if (state.state === 'existing' && state.partitions !== state.wantedPartitions) {
      lines.push(
        `warning: ${state.topic} has ${state.partitions} partitions, VIGIL_TOPIC_PARTITIONS says ${state.wantedPartitions}; existing topics are left as they are (kafka-topics.sh --alter adds partitions)`,
      );
    }
  }
  return lines;
}

/**
 * `vigil topics ensure`: creates Vigil's topics before the first `vigil run`, so producers can
 * write a backlog before the pipeline starts (the broker does not create topics on its own).
 */
export async function runTopics(args: readonly string[], config: Config): Promise<number> {
  if (args[0] !== 'ensure') {
    console.error(TOPICS_USAGE);
    return 2;
  }
  // A command's output is its answer: the client's own logs from warnings up, unless LOG_LEVEL asks
  // for less or for more detail (debug, trace). Read from the configuration: a blank LOG_LEVEL is the default.
  const level = config.logLevel === 'info' ? 'warn' : config.logLevel;
  const kafka = createKafka(config, createLogger({ level, secrets: secretsOf(config) }), `${config.kafka.clientId}-topics`);
  // The intake's raw topic too, where this configuration runs it (VIGIL_INTAKE_TOKEN set).
  const states = await ensureTopicStates(kafka, config, config.intake.token === undefined ? [] : [config.intake.topic]);
  for (const line of describeTopics(states)) console.log(line);
  return 0;
}
