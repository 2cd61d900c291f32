import { alertDiscoverUrl, ids } from '../../dashboards';

/** The hash's state parameters, decoded: what Kibana reads as Rison. */
function stateOf(url: string): { path: string; g: string; a: string } {
  const [before, hash = ''] = url.split('#');
  const [path = '', query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  return { path: `${before}#${path}`, g: params.get('_g') ?? '', a: params.get('_a') ?? '' };
}

describe('alertDiscoverUrl (the alert in Kibana, for notifications)', () => {
  it("opens Vigil's open-alerts search narrowed to the alert, from five minutes before it to now while it is open", () => {
    const url = alertDiscoverUrl('https://kibana.example.com/s/security/', 'vigil', { id: 'alert-d45306d206afe65d87c25f57', firstSeen: '2026-11-27T20:54:08.335Z' });
    expect(stateOf(url)).toEqual({
      path: `https://kibana.example.com/s/security/app/discover#/view/${ids.search('vigil', 'open-alerts')}`,
      g: "(time:(from:'2026-11-27T20:49:08.335Z',to:now))",
      a: `(query:(language:kuery,query:'kibana.alert.uuid : "alert-d45306d206afe65d87c25f57"'))`,
    });
  });

  it('ends five minutes after a resolved alert, and escapes what Rison and KQL give meaning to', () => {
    const url = alertDiscoverUrl('https://kibana.example.com', 'acme', { id: `it's!"x`, firstSeen: '2026-11-27T20:54:08.335Z', resolvedAt: '2026-11-27T21:10:00.000Z' });
    const state = stateOf(url);
    expect(state.path).toBe(`https://kibana.example.com/app/discover#/view/${ids.search('acme', 'open-alerts')}`);
    expect(state.g).toBe("(time:(from:'2026-11-27T20:49:08.335Z',to:'2026-11-27T21:15:00.000Z'))");
    expect(state.a).toBe(`(query:(language:kuery,query:'kibana.alert.uuid : "it!'s!!\\"x"'))`);
    expect(url).not.toMatch(/[\s"]/);
  });
});
