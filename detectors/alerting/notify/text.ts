/** Cuts to `max` characters (code points, so no surrogate pair is split), marking the cut with `…`. */
export function clip(text: string, max: number): string {
  const characters = Array.from(text);
  return characters.length <= max ? text : `${characters.slice(0, max - 1).join('')}…`;
}
