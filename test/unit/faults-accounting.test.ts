import { accountFault, compareDetections, formatTable, missedTargets, type FaultObservation, type ObservedNotification } from '../../scripts/faults-accounting';

const note = (deliveryId: string, alertId: string, revision: number, kind: string): ObservedNotification => ({ deliveryId, alertId, revision, kind });

/** A run where everything arrived exactly once. */
function clean(): FaultObservation {
  return {
    fault: 'clean',
    sentIds: ['e1', 'e2', 'e3'],
    droppedByProducer: 0,
    indexedIds: ['e1', 'e2', 'e3'],
    eventDeadLetters: 0,
    detections: [
      { id: 'd1', rule: 'brute-force', key: 'actor.userId=u1' },
      { id: 'd2', rule: 'flood', key: 'client.ip=1.2.3.4' },
    ],
    reference: [
      { id: 'r1', rule: 'brute-force', key: 'actor.userId=u1' },
      { id: 'r2', rule: 'flood', key: 'client.ip=1.2.3.4' },
    ],
    alertIds: ['a1', 'a2'],
    referenceAlerts: 2,
    alerterPending: 0,
    outbox: [note('n1', 'a1', 1, 'opened'), note('n2', 'a1', 2, 'escalated'), note('n3', 'a2', 1, 'opened')],
    received: [note('n1', 'a1', 1, 'opened'), note('n2', 'a1', 2, 'escalated'), note('n3', 'a2', 1, 'opened')],
    notificationDeadLetters: 0,
    supervisorRestarts: 0,
    recovered: true,
    catchUpMs: 1500,
  };
}

describe('fault accounting', () => {
  it('counts nothing lost or doubled when everything arrived once', () => {
    const result = accountFault(clean());
    expect(result).toMatchObject({ sent: 3, eventsLost: 0, documentsDuplicated: 0, detectionsLost: 0, detectionsDoubled: 0, notificationsExpected: 3, notificationsLost: 0, deliveriesDuplicated: 0 });
    expect(missedTargets(result)).toEqual([]);
  });

  it('counts an event missing from the index, one indexed twice, and one the producer dropped', () => {
    const result = accountFault({ ...clean(), sentIds: ['e1', 'e2', 'e3'], droppedByProducer: 1, indexedIds: ['e1', 'e1', 'e3'] });
    expect(result).toMatchObject({ sent: 4, eventsLost: 2, documentsDuplicated: 1 });
    expect(missedTargets(result)).toEqual(['2 events lost', '1 duplicated documents']);
  });

  it('owes each alert in Elasticsearch its opening, even when the outbox never had it', () => {
    const result = accountFault({ ...clean(), alertIds: ['a1', 'a2', 'a3'] });
    expect(result).toMatchObject({ notificationsExpected: 4, notificationsLost: 1 });
    expect(missedTargets(result)).toEqual(['1 notifications lost']);
  });

  it('takes a grouped notification carrying a later revision as the changes it stands for', () => {
    // Opened, then escalated at revision 3 in the outbox; the destination got one opening that
    // already carried revision 3 (grouped within the group wait).
    const observation = clean();
    const outbox = [note('n1', 'a1', 1, 'opened'), note('n2', 'a1', 3, 'escalated'), note('n3', 'a2', 1, 'opened'), note('n4', 'a2', 2, 'resolved')];
    const grouped = accountFault({ ...observation, outbox, received: [note('g1', 'a1', 3, 'opened'), note('g2', 'a2', 1, 'opened'), note('g3', 'a2', 2, 'resolved')] });
    expect(grouped).toMatchObject({ notificationsExpected: 4, notificationsLost: 0 });
    const stale = accountFault({ ...observation, outbox, received: [note('g1', 'a1', 2, 'opened'), note('g2', 'a2', 1, 'opened')] });
    expect(stale).toMatchObject({ notificationsExpected: 4, notificationsLost: 2 });
  });

  it('counts an outbox record never received as lost, and a delivery id received twice as a duplicate, not as lost', () => {
    const observation = clean();
    const result = accountFault({
      ...observation,
      received: [note('n1', 'a1', 1, 'opened'), note('n1', 'a1', 1, 'opened'), note('n3', 'a2', 1, 'opened')],
      notificationDeadLetters: 1,
    });
    expect(result).toMatchObject({ notificationsLost: 1, deliveriesDuplicated: 1, notificationDeadLetters: 1 });
    expect(missedTargets(result)).toEqual(['1 notifications lost', '1 notifications dead-lettered']);
  });

  it('compares detections with the reference by rule and key, and counts a repeated detection id as doubled', () => {
    const reference = [
      { id: 'r1', rule: 'brute-force', key: 'actor.userId=u1' },
      { id: 'r2', rule: 'brute-force', key: 'actor.userId=u2' },
    ];
    expect(compareDetections([{ id: 'd1', rule: 'brute-force', key: 'actor.userId=u1' }], reference)).toEqual({ lost: 1, doubled: 0 });
    expect(
      compareDetections(
        [
          { id: 'd1', rule: 'brute-force', key: 'actor.userId=u1' },
          { id: 'd2', rule: 'brute-force', key: 'actor.userId=u2' },
          { id: 'd3', rule: 'brute-force', key: 'actor.userId=u2' },
        ],
        reference,
      ),
    ).toEqual({ lost: 0, doubled: 1 });
    expect(compareDetections([reference[0] as (typeof reference)[number], reference[0] as (typeof reference)[number]], reference)).toEqual({ lost: 1, doubled: 2 });
  });

  it('fails a run whose detections differ from the reference, lost or doubled', () => {
    const lost = accountFault({ ...clean(), detections: [{ id: 'd1', rule: 'brute-force', key: 'actor.userId=u1' }] });
    expect(missedTargets(lost)).toEqual(['1 detections lost']);
    const doubled = accountFault({ ...clean(), detections: [...clean().detections, { id: 'd3', rule: 'flood', key: 'client.ip=1.2.3.4' }] });
    expect(missedTargets(doubled)).toEqual(['1 detections doubled']);
    // The reference run itself has nothing to compare with.
    const withoutReference = clean();
    delete withoutReference.reference;
    expect(missedTargets(accountFault(withoutReference))).toEqual([]);
  });

  it('fails a run read back while the alerter still held detections or unsent changes: the alerts owed are not all known', () => {
    // Everything that reached the outbox arrived, but three detections never reached an alert.
    const result = accountFault({ ...clean(), alerterPending: 3 });
    expect(result).toMatchObject({ notificationsLost: 0, alerterPending: 3 });
    expect(missedTargets(result)).toEqual(['3 detections or alert changes never left the alerter']);
  });

  it('fails a run that did not recover or dead-lettered good events, and shows it in the table', () => {
    const result = accountFault({ ...clean(), fault: 'broker down', recovered: false, eventDeadLetters: 2 });
    expect(missedTargets(result)).toEqual(['2 good events dead-lettered', 'not recovered by itself']);
    const table = formatTable([accountFault(clean()), result]).split('\n');
    expect(table).toHaveLength(4);
    expect(table[2]).toMatch(/^\| clean \| 3 \| 0 \| 0 \| 2 \(2\) \| 0 \/ 0 \| 2 \(2\) \| 3 \| 0 \| 0 \| 0 \| 1\.5 s \| pass \|$/);
    expect(table[3]).toContain('| no | FAIL: 2 good events dead-lettered, not recovered by itself |');
  });
});
