/**
 * `compute` with its answers kept for the last `limit` keys asked (the oldest asked first is
 * forgotten first). For pure lookups that traffic repeats: an IP address's scope, its geo answer,
 * its membership of a CIDR list. An `undefined` answer is not kept (computed again each time).
 */
export function boundedMemo<V>(limit: number, compute: (key: string) => V): (key: string) => V {
  const answers = new Map<string, V>();
  return (key) => {
    let answer = answers.get(key);
    if (answer === undefined) {
      answer = compute(key);
      if (answers.size >= limit) {
        const oldest = answers.keys().next();
        if (oldest.done !== true) answers.delete(oldest.value);
      }
      answers.set(key, answer);
    }
    return answer;
  };
}
