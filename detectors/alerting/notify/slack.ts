import type { AlertChange } from '../../../schemas';
import { clip } from './text';

/**
 * A Slack text object. `verbatim`: Slack neither turns bare URLs into links nor parses channel
 * names and mentions in it. Titles, reasons and keys come from event data, and a user id such as
 * `https://evil.example/reset` must not arrive as a link on-call clicks.
 */
export interface SlackText {
  type: 'mrkdwn';
  text: string;
  verbatim: true;
}

/** The Block Kit blocks the Slack formatter uses. */
export type SlackBlock =
  | { type: 'section'; text: SlackText }
  | { type: 'section'; fields: SlackText[] }
  | { type: 'context'; elements: SlackText[] };

/** A Slack incoming-webhook message. */
export interface SlackMessage {
  /** The one-liner: shown in notifications and by clients that don't render blocks. */
  text: string;
  blocks: SlackBlock[];
}

// Slack's limits: a section's text 3000 characters, a field 2000, at most 10 fields.
const SLACK_SECTION_MAX = 3000;
const SLACK_FIELD_MAX = 2000;
const SLACK_TITLE_MAX = 300;
const SLACK_RULES_SHOWN = 10;
const SLACK_ENTITIES_SHOWN = 5;

/**
 * Escapes what Slack parses in text. Titles, reasons and keys come from event data, so without
 * this an attacker could put `<!channel>` or a disguised link `<https://evil|login>` in a page.
 */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes, then clips by whole characters without leaving half an entity (or half an emoji) behind. */
function slackText(text: string, max: number): string {
  const escaped = slackEscape(text);
  const clipped = clip(escaped, max);
  if (clipped === escaped) return escaped;
  // clip's own mark goes, and with it any entity the cut split.
  return `${clipped.slice(0, -1).replace(/&[a-z]*$/, '')}…`;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** The one-line summary: severity, title, count, status. Unescaped. */
function headline(change: AlertChange): string {
  const { alert } = change;
  return `[${alert.severity.toUpperCase()}] ${clip(alert.title, SLACK_TITLE_MAX)} | ${plural(alert.count, 'detection')} | ${change.kind}`;
}

/**
 * The Slack incoming-webhook message for a change: `text` is the one-liner (severity, title,
 * count, status); the blocks hold the reason, what it groups on, the rules, first and last seen,
 * the entities and the top sources of what it absorbed (a flood's IPs, a campaign's entities),
 * a link to the alert in Kibana when one is configured, and the alert id. Everything from the
 * alert is escaped for Slack and cut to Slack's limits.
 */
export function formatSlack(change: AlertChange, link?: string): SlackMessage {
  const { alert } = change;
  const text = slackEscape(headline(change));
  const rules = alert.rules.slice(0, SLACK_RULES_SHOWN).map((ruleId, index) => {
    const name = alert.ruleNames[index];
    return name === undefined || name === ruleId ? ruleId : `${name} (${ruleId})`;
  });
  if (alert.rules.length > SLACK_RULES_SHOWN) rules.push(`and ${alert.rules.length - SLACK_RULES_SHOWN} more`);
  const fields: SlackText[] = [
    { type: 'mrkdwn', verbatim: true, text: `*Rules*\n${slackText(rules.join('\n'), SLACK_FIELD_MAX - 10)}` },
    { type: 'mrkdwn', verbatim: true, text: `*Severity*\n${alert.severity}` },
    { type: 'mrkdwn', verbatim: true, text: `*First seen*\n${slackText(alert.firstSeen, 100)}` },
    { type: 'mrkdwn', verbatim: true, text: `*Last seen*\n${slackText(alert.lastSeen, 100)}` },
  ];
  if (alert.resolvedAt !== undefined) fields.push({ type: 'mrkdwn', verbatim: true, text: `*Resolved*\n${slackText(alert.resolvedAt, 100)}` });
  fields.push({ type: 'mrkdwn', verbatim: true, text: `*Key*\n${slackText(alert.groupKey, SLACK_FIELD_MAX - 10)}` });
  if (alert.entities !== undefined && alert.entities.length > 0) {
    fields.push({ type: 'mrkdwn', verbatim: true, text: `*Entities*\n${slackText(alert.entities.slice(0, SLACK_ENTITIES_SHOWN).join('\n'), SLACK_FIELD_MAX - 12)}` });
  }
  const blocks: SlackBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', verbatim: true, text: `*${slackText(headline(change), SLACK_SECTION_MAX - 2)}*` } },
    { type: 'section', text: { type: 'mrkdwn', verbatim: true, text: `*Reason*\n${slackText(alert.reason, SLACK_SECTION_MAX - 12)}` } },
    { type: 'section', fields },
  ];
  const evidence = alert.evidence;
  if (evidence !== undefined) {
    // The one detection's sentence speaks for one source; a flood or a campaign has many.
    const top = evidence.top.slice(0, SLACK_ENTITIES_SHOWN).map((entry) => `${entry.entity} (${entry.count})`);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', verbatim: true, text: `*Evidence*\n${slackText(`${evidence.summary}${top.length > 0 ? `\nTop: ${top.join(', ')}` : ''}`, SLACK_SECTION_MAX - 14)}` } });
  }
  // A configured address, not event data: checked, and only its `&` written as Slack asks.
  const linkText = link !== undefined && /^https?:\/\/[^\s<>|]+$/.test(link) ? `<${link.replace(/&/g, '&amp;')}|Open in Kibana> · ` : '';
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', verbatim: true, text: `${linkText}Alert id: ${slackText(alert.id, 200)}` }] });
  return { text, blocks };
}
