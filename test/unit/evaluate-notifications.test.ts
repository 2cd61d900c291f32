import { notificationsOf } from '../../scripts/evaluate/run';
import type { Received } from '../../scripts/alert-receiver';

const received = (path: string, body: string, headers: Record<string, string> = {}): Received => ({ path, headers, body, json: undefined, at: 0 });
const A = 'alert-0123456789abcdef01234567';
const B = 'alert-fedcba9876543210fedcba98';

describe('notificationsOf', () => {
  it('names each destination, reads the alerts a body names, and counts a retried delivery once', () => {
    const notes = notificationsOf([
      received('/webhook', JSON.stringify({ alert: { id: A } }), { 'x-vigil-delivery': 'd1' }),
      received('/webhook', JSON.stringify({ alert: { id: A }, sentAt: 'later' }), { 'x-vigil-delivery': 'd1' }),
      received('/slack', `{"text":"Alert id: ${A} and ${B} and ${A}"}`),
      received('/slack', `{"text":"Alert id: ${A} and ${B} and ${A}"}`),
      received('/pagerduty', JSON.stringify({ dedup_key: B, event_action: 'resolve' })),
      received('/elsewhere', 'no alert here'),
    ]);
    expect(notes).toEqual([
      { destination: 'on-call-webhook', alertIds: [A] },
      { destination: 'security-slack', alertIds: [A, B] },
      { destination: 'pagerduty-sre', alertIds: [B] },
      { destination: '/elsewhere', alertIds: [] },
    ]);
  });
});
