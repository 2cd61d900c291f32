/** Edits (insert, delete, substitute, swap two neighbours) from one text to another. */
export function editDistance(left: string, right: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= left.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= right.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = left[i - 1] === right[j - 1] ? 0 : 1;
      const above = rows[i - 1] ?? [];
      let value = Math.min((above[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (above[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && left[i - 1] === right[j - 2] && left[i - 2] === right[j - 1]) value = Math.min(value, (rows[i - 2]?.[j - 2] ?? 0) + 1);
      row.push(value);
    }
    rows.push(row);
  }
  return rows[left.length]?.[right.length] ?? 0;
}

/**
 * The candidate fewest edits from `text`, when it is at most `maxDistance` away: the "did you mean"
 * of a misspelt setting, rule type or field. `ignoreCase` compares them lower-cased.
 */
export function nearest(text: string, candidates: Iterable<string>, maxDistance: number, options: { ignoreCase?: boolean } = {}): string | undefined {
  const fold = (value: string): string => (options.ignoreCase === true ? value.toLowerCase() : value);
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(fold(text), fold(candidate));
    if (best === undefined || distance < best.distance) best = { candidate, distance };
  }
  return best !== undefined && best.distance <= maxDistance ? best.candidate : undefined;
}
