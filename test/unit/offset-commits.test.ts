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
    const first = [commits.commit({ topic: 'a', partition: 0, offset: '2' }, () => true), commits.commit({ topic: 'a', partition: 1, offset: '5' }, () => true)];
    await turn();
    expect(kafka.requests).toStrictEqual(['a:0@2 a:1@5']);
    const second = [commits.commit({ topic: 'a', partition: 0, offset: '4' }, () => true), commits.commit({ topic: 'a', partition: 0, offset: '9' }, () => true), commits.commit({ topic: 'b', partition: 0, offset: '1' }, () => true)];
    await turn();
    expect(kafka.requests).toHaveLength(1);
    kafka.answer();
    await expect(Promise.all(first)).resolves.toStrictEqual([true, true]);
    await turn();
    expect(kafka.requests).toStrictEqual(['a:0@2 a:1@5', 'a:0@9 b:0@1']);
    kafka.answer();
    await expect(Promise.all(second)).resolves.toStrictEqual([true, true, true]);
    await commits.idle();
  });

  it('answers false for a failed request and goes on with the next; drops an offset no longer current, also one a newer offset replaced', async () => {
    const kafka = consumer();
    const commits = new OffsetCommits(kafka.send, logger);
    const failed = commits.commit({ topic: 'a', partition: 0, offset: '2' }, () => true);
    await turn();
    let epoch = 1;
    const stale = commits.commit({ topic: 'a', partition: 0, offset: '8' }, () => epoch === 1);
    const gone = commits.commit({ topic: 'b', partition: 0, offset: '3' }, () => epoch === 1);
    epoch = 2;
    // The partition's new assignment reads on from a lower offset: it replaces the stale one.
    const fresh = commits.commit({ topic: 'a', partition: 0, offset: '4' }, () => epoch === 2);
    await expect(stale).resolves.toBe(false);
    kafka.answer(new Error('the coordinator moved'));
    await expect(failed).resolves.toBe(false);
    await turn();
    expect(kafka.requests).toStrictEqual(['a:0@2', 'a:0@4']);
    await expect(gone).resolves.toBe(false);
    kafka.answer();
    await expect(fresh).resolves.toBe(true);
    let idle = false;
    await commits.idle().then(() => (idle = true));
    expect(idle).toBe(true);
  });

  it('once stopping, sends what waits, but after a failed request drops the rest rather than trying again', async () => {
    const kafka = consumer();
    const commits = new OffsetCommits(kafka.send, logger);
    const out = commits.commit({ topic: 'a', partition: 0, offset: '2' }, () => true);
    await turn();
    const waiting = commits.commit({ topic: 'a', partition: 1, offset: '7' }, () => true);
    commits.stop();
    kafka.answer(new Error('the coordinator is away'));
    await expect(out).resolves.toBe(false);
    await expect(waiting).resolves.toBe(false);
    await commits.idle();
    expect(kafka.requests).toStrictEqual(['a:0@2']);
    // What comes after a successful request still goes while stopping.
    const last = commits.commit({ topic: 'a', partition: 1, offset: '9' }, () => true);
    await turn();
    kafka.answer();
    await expect(last).resolves.toBe(true);
    expect(kafka.requests).toStrictEqual(['a:0@2', 'a:1@9']);
  });
});
