/**
 * A small MaxMind DB writer for tests. MaxMind's databases can't be downloaded here, and the
 * registry has no maintained writer for Node, so tests build their own `.mmdb` from a few
 * networks, written to the format's spec (https://maxmind.github.io/MaxMind-DB/): an IPv6 search
 * tree with 24-bit records (IPv4 networks live at ::/96, as in MaxMind's own files), a 16-byte
 * separator, the data section, then the metadata after the `\xAB\xCD\xEFMaxMind.com` marker.
 * Each record is written once with no pointers, which every reader accepts.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A value of the data section: integers in 0..2^32-1 are written as uint32, other numbers as doubles. */
export type MmdbValue = string | number | boolean | readonly MmdbValue[] | { readonly [key: string]: MmdbValue };

/** One network and the record every address in it answers with. */
export interface MmdbNetwork {
  /** `a.b.c.d/n` or `v6::/n` */
  network: string;
  record: { readonly [key: string]: MmdbValue };
}

/** What a database says about itself. */
export interface MmdbMetadata {
  /** @defaultValue 'GeoLite2-City' */
  databaseType?: string;
  buildEpoch: Date;
  /** @defaultValue 'Vigil test database' */
  description?: string;
}

const TYPE = { pointer: 1, string: 2, double: 3, uint16: 5, uint32: 6, map: 7, uint64: 9, array: 11, boolean: 14 } as const;

function control(type: number, size: number): Buffer {
  const head: number[] = [];
  const extra: number[] = [];
  let sizeBits = size;
  if (size >= 65_821) {
    sizeBits = 31;
    const rest = size - 65_821;
    extra.push((rest >> 16) & 0xff, (rest >> 8) & 0xff, rest & 0xff);
  } else if (size >= 285) {
    sizeBits = 30;
    const rest = size - 285;
    extra.push((rest >> 8) & 0xff, rest & 0xff);
  } else if (size >= 29) {
    sizeBits = 29;
    extra.push(size - 29);
  }
  if (type > 7) head.push(sizeBits, type - 7);
  else head.push((type << 5) | sizeBits);
  return Buffer.from([...head, ...extra]);
}

function unsigned(type: number, value: number | bigint): Buffer {
  const bytes: number[] = [];
  for (let rest = BigInt(value); rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn));
  return Buffer.concat([control(type, bytes.length), Buffer.from(bytes)]);
}

/** Encodes one value of the data section. */
export function encodeValue(value: MmdbValue): Buffer {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([control(TYPE.string, bytes.length), bytes]);
  }
  if (typeof value === 'boolean') return control(TYPE.boolean, value ? 1 : 0);
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value < 2 ** 32) return unsigned(TYPE.uint32, value);
    const bytes = Buffer.alloc(8);
    bytes.writeDoubleBE(value);
    return Buffer.concat([control(TYPE.double, 8), bytes]);
  }
  if (Array.isArray(value)) return Buffer.concat([control(TYPE.array, value.length), ...value.map((item: MmdbValue) => encodeValue(item))]);
  const entries = Object.entries(value as { readonly [key: string]: MmdbValue });
  return Buffer.concat([control(TYPE.map, entries.length), ...entries.flatMap(([key, item]) => [encodeValue(key), encodeValue(item)])]);
}

/** The 128 bits of a network's address (IPv4 at ::/96) and its prefix length in that tree. */
function networkBits(network: string): { bits: number[]; prefix: number } {
  const [address = '', length = ''] = network.split('/');
  const prefix = Number(length);
  if (isIPv4(address)) {
    const octets = address.split('.').map(Number);
    const bits = [...Array<number>(96).fill(0), ...octets.flatMap((octet) => [7, 6, 5, 4, 3, 2, 1, 0].map((bit) => (octet >> bit) & 1))];
    return { bits, prefix: 96 + prefix };
  }
  if (!isIPv6(address)) throw new Error(`not a network: ${network}`);
  const [left = '', right = ''] = address.split('::');
  const groupsOf = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const head = groupsOf(left);
  const tail = groupsOf(right);
  const groups = address.includes('::') ? [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  return { bits: groups.flatMap((group) => Array.from({ length: 16 }, (_, index) => (group >> (15 - index)) & 1)), prefix };
}

interface TreeNode {
  children: [TreeNode | number | undefined, TreeNode | number | undefined];
}

/**
 * Builds a `.mmdb` file's bytes. Networks must not overlap (no record inside another's network).
 */
export function buildMmdb(networks: readonly MmdbNetwork[], metadata: MmdbMetadata): Buffer {
  const data: Buffer[] = [];
  let dataLength = 0;
  const root: TreeNode = { children: [undefined, undefined] };
  for (const { network, record } of networks) {
    const encoded = encodeValue(record);
    const offset = dataLength;
    data.push(encoded);
    dataLength += encoded.length;
    const { bits, prefix } = networkBits(network);
    let node = root;
    for (let depth = 0; depth < prefix; depth++) {
      const bit = bits[depth] === 1 ? 1 : 0;
      if (depth === prefix - 1) {
        if (node.children[bit] !== undefined) throw new Error(`${network} overlaps another network`);
        node.children[bit] = offset;
        break;
      }
      const next = node.children[bit];
      if (typeof next === 'number') throw new Error(`${network} is inside another network`);
      const child: TreeNode = next ?? { children: [undefined, undefined] };
      node.children[bit] = child;
      node = child;
    }
  }
  // Nodes are numbered breadth-first from the root, which must be node 0.
  const nodes: TreeNode[] = [root];
  for (let index = 0; index < nodes.length; index++) {
    for (const child of nodes[index]?.children ?? []) if (typeof child === 'object') nodes.push(child);
  }
  const nodeCount = nodes.length;
  const numberOf = new Map(nodes.map((node, index) => [node, index]));
  const record = (child: TreeNode | number | undefined): number =>
    child === undefined ? nodeCount : typeof child === 'number' ? nodeCount + 16 + child : (numberOf.get(child) ?? nodeCount);
  const tree = Buffer.alloc(nodeCount * 6);
  nodes.forEach((node, index) => {
    tree.writeUIntBE(record(node.children[0]), index * 6, 3);
    tree.writeUIntBE(record(node.children[1]), index * 6 + 3, 3);
  });
  const meta = Buffer.concat([
    control(TYPE.map, 9),
    encodeValue('node_count'),
    unsigned(TYPE.uint32, nodeCount),
    encodeValue('record_size'),
    unsigned(TYPE.uint16, 24),
    encodeValue('ip_version'),
    unsigned(TYPE.uint16, 6),
    encodeValue('database_type'),
    encodeValue(metadata.databaseType ?? 'GeoLite2-City'),
    encodeValue('languages'),
    encodeValue(['en']),
    encodeValue('binary_format_major_version'),
    unsigned(TYPE.uint16, 2),
    encodeValue('binary_format_minor_version'),
    unsigned(TYPE.uint16, 0),
    encodeValue('build_epoch'),
    unsigned(TYPE.uint64, BigInt(Math.floor(metadata.buildEpoch.getTime() / 1000))),
    encodeValue('description'),
    encodeValue({ en: metadata.description ?? 'Vigil test database' }),
  ]);
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from('ABCDEF4D61784D696E642E636F6D', 'hex'), meta]);
}

/** A MaxMind City record as GeoLite2-City spells it, from the few fields tests vary. */
export function cityRecord(place: {
  country: string;
  city?: string;
  subdivision?: string;
  latitude?: number;
  longitude?: number;
  accuracyRadius?: number;
  timeZone?: string;
}): { readonly [key: string]: MmdbValue } {
  const location: Record<string, MmdbValue> = {};
  if (place.latitude !== undefined) location.latitude = place.latitude;
  if (place.longitude !== undefined) location.longitude = place.longitude;
  if (place.accuracyRadius !== undefined) location.accuracy_radius = place.accuracyRadius;
  if (place.timeZone !== undefined) location.time_zone = place.timeZone;
  return {
    continent: { code: 'NA', geoname_id: 6255149, names: { en: 'North America' } },
    country: { geoname_id: 6252001, iso_code: place.country, names: { en: place.country } },
    registered_country: { geoname_id: 6252001, iso_code: place.country, names: { en: place.country } },
    ...(place.city === undefined ? {} : { city: { geoname_id: 4143861, names: { en: place.city, de: `${place.city} (de)` } } }),
    ...(place.subdivision === undefined ? {} : { subdivisions: [{ geoname_id: 4142224, iso_code: place.subdivision, names: { en: place.subdivision } }] }),
    ...(Object.keys(location).length === 0 ? {} : { location }),
  };
}
