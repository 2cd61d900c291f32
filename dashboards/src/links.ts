import { ids } from './saved-objects';

/** A string as Rison, the notation of Kibana's URL state: quoted, with `!` and `'` escaped by `!`. */
function risonString(text: string): string {
  return `'${text.replace(/!/g, '!!').replace(/'/g, "!'")}'`;
}

/** Five minutes: the window opens a little before the incident's first detection. */
const LEAD_MS = 5 * 60_000;

/**
 * The address of one alert in Kibana: Discover on Vigil's "open alerts" search (the alerts data
 * view and its columns), narrowed to the alert's id, over its incident's time (from a little
 * before its first detection to its resolve, or to now while it is open). What a notification
 * links to, so on-call lands on the incident, its detections and their events one click on.
 * @param kibanaUrl Kibana's base URL, with `/s/<space>` for a space other than the default
 * @param prefix the index prefix the saved objects were installed under (`vigil dashboards install`)
 */
export function alertDiscoverUrl(kibanaUrl: string, prefix: string, alert: { id: string; firstSeen: string; resolvedAt?: string }): string {
  const from = new Date(Date.parse(alert.firstSeen) - LEAD_MS).toISOString();
  const to = alert.resolvedAt === undefined ? 'now' : new Date(Date.parse(alert.resolvedAt) + LEAD_MS).toISOString();
  const globalState = `(time:(from:${risonString(from)},to:${to === 'now' ? 'now' : risonString(to)}))`;
  const appState = `(query:(language:kuery,query:${risonString(`kibana.alert.uuid : "${alert.id.replace(/["\\]/g, '\\$&')}"`)}))`;
  const base = kibanaUrl.replace(/\/+$/, '');
  return `${base}/app/discover#/view/${ids.search(prefix, 'open-alerts')}?_g=${encodeURIComponent(globalState)}&_a=${encodeURIComponent(appState)}`;
}
