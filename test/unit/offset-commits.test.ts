import { OffsetCommits, createLogger, type PartitionOffset } from '../../platform';

const logger = createLogger({ level: 'silent' });
const text = (offsets: readonly PartitionOffset[]): string => offsets.map(({ topic, partition, offset }) => `${topic}:${partition}@${offset}`).join(' ');

/** A consumer whose commit requests wait until answered, oldest first. */
function consumer(): { send: (offsets: readonly PartitionOffset[]) => Promise<void>; requests: string[]; answer: (error?: Error) => void } {
  const requests: string[] = [];
  const gates: { resolve: () => void; reject: (error: Error) => void }[] = [];
  return {
    requests,
    send: (offsets) => {
      requests.push(text(offsets));
      return new Promise<void>((resolve, reject) => gates.push({ resolve, reject }));
    },
    answer: (error) => {
      const gate = gates.shift();
      if (error) gate?.reject(error);
      else gate?.resolve();
    },
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('OffsetCommits', () => {
  it('sends the offsets queued in one turn as one request, and those queued while it is out as the next, each partition\'s newest', async () => {
    const kafka = consumer();
    const commits = new OffsetCommits(kafka.send, logger);
    commits.commit({ topic: 'a', partition: 0, offset: '2' }, () => true);
    commits.commit({ topic: 'a', partition: 1, offset: '5' }, () => true);
    await turn();
    expect(kafka.requests).toStrictEqual(['a:0@2 a:1@5']);
    commits.commit({ topic: 'a', partition: 0, offset: '4' }, () => true);
    commits.commit({ topic: 'a', partition: 0, offset: '9' }, () => true);
    commits.commit({ topic: 'b', partition: 0, offset: '1' }, () => true);
    await turn();
    expect(kafka.requests).toHaveLength(1);
    kafka.answer();
    await turn();
    expect(kafka.requests).toStrictEqual(['a:0@2 a:1@5', 'a:0@9 b:0@1']);
    kafka.answer();
    await commits.idle();
  });

  it('goes on after a failed request; drops an offset no longer current when its request is made, also one a newer offset replaced', async () => {
    const kafka = consumer();
    const commits = new OffsetCommits(kafka.send, logger);
    commits.commit({ topic: 'a', partition: 0, offset: '2' }, () => true);
    await turn();
    let epoch = 1;
    commits.commit({ topic: 'a', partition: 0, offset: '8' }, () => epoch === 1);
    commits.commit({ topic: 'b', partition: 0, offset: '3' }, () => epoch === 1);
    commits.commit({ topic: 'c', partition: 0, offset: '6' }, () => {
      throw new Error('asked about a partition it no longer knows');
    });
    epoch = 2;
    // The partition's new assignment reads on from a lower offset: it replaces the stale one.
    commits.commit({ topic: 'a', partition: 0, offset: '4' }, () => epoch === 2);
    kafka.answer(new Error('the coordinator moved'));
    await turn();
    expect(kafka.requests).toStrictEqual(['a:0@2', 'a:0@4']);
    kafka.answer();
    let idle = false;
    await commits.idle().then(() => (idle = true));
    expect(idle).toBe(true);
    // Nothing waits: nothing more is sent.
    await turn();
    expect(kafka.requests).toHaveLength(2);
  });

  it('once stopping, sends what waits and what comes while requests succeed, but after a failed request sends nothing more', async () => {
    const kafka = consumer();
    const commits = new OffsetCommits(kafka.send, logger);
    commits.commit({ topic: 'a', partition: 0, offset: '2' }, () => true);
    await turn();
    commits.stop();
    // A chunk in hand at stop() finishes: its commit still goes after a successful request.
    commits.commit({ topic: 'a', partition: 1, offset: '7' }, () => true);
    kafka.answer();
    await turn();
    expect(kafka.requests).toStrictEqual(['a:0@2', 'a:1@7']);
    commits.commit({ topic: 'a', partition: 2, offset: '3' }, () => true);
    kafka.answer(new Error('the coordinator is away'));
    await commits.idle();
    // What waited behind the failure is dropped, and so is a chunk finishing after it.
    commits.commit({ topic: 'a', partition: 1, offset: '9' }, () => true);
    await turn();
    expect(kafka.requests).toStrictEqual(['a:0@2', 'a:1@7']);
    await commits.idle();
  });
});
