import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

/**
 * What geoip-lite's `lookup` answers for a located address: the fields enrichment reads, with
 * geoip-lite's own values (`''` for unknown names, `[null, null]` or `[0, 0]` for no place).
 */
export interface GeoipLiteAnswer {
  country: string;
  region: string;
  city: string;
  timezone: string;
  ll: [number | null, number | null];
  area?: number;
}

/** Records per block: a block is read with one `pread` and kept whole (3 KiB for both tables). */
const RECORDS_PER_BLOCK_4 = 128;
const RECORDS_PER_BLOCK_6 = 64;
/** @defaultValue 512 blocks (1.5 MiB) per table kept, least recently used first out. */
const BLOCKS_KEPT = 512;

/**
 * A sorted table of fixed-size records (an address range each) read a block at a time with
 * `pread`: the first address of every block stays in memory (a few hundred kB), the last
 * `blocksKept` blocks too; the file itself sits in the operating system's page cache, shared and
 * reclaimable, instead of the process's memory.
 */
class BlockTable {
  readonly records: number;
  /** The first address's high and low 32 bits of each block (IPv4 tables use only the high). */
  readonly firstHigh: Uint32Array;
  readonly firstLow: Uint32Array;
  private readonly blocks = new Map<number, Buffer>();

  constructor(
    private readonly fd: number,
    readonly recordBytes: number,
    private readonly recordsPerBlock: number,
    private readonly blocksKept: number,
    wide: boolean,
  ) {
    const size = fstatSync(fd).size;
    if (size % recordBytes !== 0) throw new RangeError(`geoip-lite data: a table of ${size} bytes is not made of ${recordBytes}-byte records`);
    this.records = size / recordBytes;
    const count = Math.ceil(this.records / recordsPerBlock);
    this.firstHigh = new Uint32Array(count);
    this.firstLow = new Uint32Array(wide ? count : 0);
    // One pass over the file in 1 MiB reads (a whole number of blocks) to index the blocks.
    const blockBytes = recordBytes * recordsPerBlock;
    const chunk = Buffer.allocUnsafe(blockBytes * Math.max(1, Math.floor((1024 * 1024) / blockBytes)));
    for (let offset = 0, block = 0; offset < size; ) {
      const read = readSync(fd, chunk, 0, Math.min(chunk.length, size - offset), offset);
      if (read <= 0) throw new RangeError('geoip-lite data: the file ended early');
      for (let at = 0; at < read; at += blockBytes, block++) {
        this.firstHigh[block] = chunk.readUInt32BE(at);
        if (wide) this.firstLow[block] = chunk.readUInt32BE(at + 4);
      }
      offset += read;
    }
  }

  /** The block `block`, whole: from the kept ones or read. */
  block(block: number): Buffer {
    let content = this.blocks.get(block);
    if (content === undefined) {
      const first = block * this.recordsPerBlock;
      const length = Math.min(this.recordsPerBlock, this.records - first) * this.recordBytes;
      content = Buffer.allocUnsafe(length);
      if (readSync(this.fd, content, 0, length, first * this.recordBytes) !== length) throw new RangeError('geoip-lite data: a short read');
      if (this.blocks.size >= this.blocksKept) {
        const oldest = this.blocks.keys().next();
        if (oldest.done !== true) this.blocks.delete(oldest.value);
      }
    } else {
      // Most recently used goes last.
      this.blocks.delete(block);
    }
    this.blocks.set(block, content);
    return content;
  }

  close(): void {
    this.blocks.clear();
    closeSync(this.fd);
  }
}

const RECORD_BYTES_4 = 24;
const RECORD_BYTES_6 = 48;
const LOCATION_BYTES = 88;
const NO_LOCATION = -1 >>> 0;
const PRIVATE_RANGES_4: ReadonlyArray<readonly [number, number]> = [
  [0x0a000000, 0x0affffff],
  [0xac100000, 0xac1fffff],
  [0xc0a80000, 0xc0a8ffff],
];

/** geoip-lite's `aton4`. */
function aton4(text: string): number {
  const parts = text.split('.');
  return ((parseInt(parts[0] ?? '', 10) << 24) >>> 0) + ((parseInt(parts[1] ?? '', 10) << 16) >>> 0) + ((parseInt(parts[2] ?? '', 10) << 8) >>> 0) + (parseInt(parts[3] ?? '', 10) >>> 0);
}

/** geoip-lite's `aton6`, of which only the first 64 bits are compared. */
function aton6(text: string): [number, number] {
  const parts: Array<string | number | undefined> = text.replace(/"/g, '').split(/:/);
  const last = parts.length - 1;
  if (parts[last] === '') parts[last] = 0;
  if (last < 7) {
    parts.length = 8;
    for (let i = last; i >= 0 && parts[i] !== ''; i--) parts[7 - last + i] = parts[i];
  }
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) {
    const value = parts[i];
    groups.push(value === undefined || value === '' || value === 0 ? 0 : parseInt(String(value), 16));
  }
  return [((groups[0]! << 16) + groups[1]!) >>> 0, ((groups[2]! << 16) + groups[3]!) >>> 0];
}

function compare6(a: readonly [number, number], b: readonly [number, number]): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

/** geoip-lite's `get4mapped`: the IPv4 address inside an IPv4-mapped IPv6 one. */
function mapped4(ip: string): string | undefined {
  const upper = ip.toUpperCase();
  for (const prefix of ['0:0:0:0:0:FFFF:', '::FFFF:']) if (upper.startsWith(prefix)) return upper.slice(prefix.length);
  return undefined;
}

/** A NUL-padded text field, cut at its first NUL as geoip-lite does. */
function text(buffer: Buffer, start: number, end: number): string {
  const value = buffer.toString('utf8', start, end);
  const nul = value.indexOf('\u0000');
  return nul < 0 ? value : value.slice(0, nul);
}

/**
 * geoip-lite's city tables (`geoip-city.dat`, `geoip-city6.dat`, `geoip-city-names.dat`) read
 * from its files a block at a time instead of whole into memory: geoip-lite's own module reads
 * about 140 MB into Buffers when it is required (the IPv6 table too, whatever the traffic). This
 * keeps the names (10 MB, one read per located address otherwise), an index of the first address
 * of every block and the last blocks used. Each table is a sorted list of disjoint ranges, so
 * the range holding an address is the last one starting at or below it, if it ends at or above
 * it; test/unit/geoip-lite-files.test.ts holds the answers equal to geoip-lite's, address by
 * address.
 */
export class GeoipLiteFiles {
  private readonly table4: BlockTable;
  private readonly table6: BlockTable;
  private readonly locations: Buffer;

  constructor(dataDirectory: string, blocksKept = BLOCKS_KEPT) {
    const opened: BlockTable[] = [];
    try {
      this.locations = readFileSync(join(dataDirectory, 'geoip-city-names.dat'));
      if (this.locations.length === 0 || this.locations.length % LOCATION_BYTES !== 0) throw new RangeError(`geoip-lite data in ${dataDirectory}: geoip-city-names.dat is not made of ${LOCATION_BYTES}-byte records`);
      opened.push(new BlockTable(openSync(join(dataDirectory, 'geoip-city.dat'), 'r'), RECORD_BYTES_4, RECORDS_PER_BLOCK_4, blocksKept, false));
      opened.push(new BlockTable(openSync(join(dataDirectory, 'geoip-city6.dat'), 'r'), RECORD_BYTES_6, RECORDS_PER_BLOCK_6, blocksKept, true));
    } catch (error) {
      for (const table of opened) table.close();
      throw error;
    }
    [this.table4, this.table6] = opened as [BlockTable, BlockTable];
  }

  /** geoip-lite's `lookup(ip)` for a string address: `null` when it locates nothing. */
  lookup(ip: string): GeoipLiteAnswer | null {
    if (!ip) return null;
    const version = isIP(ip);
    if (version === 4) return this.lookup4(aton4(ip));
    if (version === 6) {
      const inner = mapped4(ip);
      return inner === undefined ? this.lookup6(aton6(ip)) : this.lookup4(aton4(inner));
    }
    return null;
  }

  close(): void {
    this.table4.close();
    this.table6.close();
  }

  private located(record: Buffer, at: number): GeoipLiteAnswer {
    const answer: GeoipLiteAnswer = { country: '', region: '', city: '', timezone: '', ll: [null, null] };
    const locationId = record.readUInt32BE(at);
    if (NO_LOCATION > locationId) {
      const start = locationId * LOCATION_BYTES;
      const location = this.locations;
      answer.country = text(location, start, start + 2);
      answer.region = text(location, start + 2, start + 5);
      answer.ll = [record.readInt32BE(at + 4) / 10000, record.readInt32BE(at + 8) / 10000];
      answer.area = record.readUInt32BE(at + 12);
      answer.timezone = text(location, start + 10, start + 42);
      answer.city = text(location, start + 42, start + LOCATION_BYTES);
    }
    return answer;
  }

  /** The last block whose first address is at or below `high:low`, or -1. */
  private static blockOf(table: BlockTable, high: number, low: number): number {
    let first = 0;
    let last = table.firstHigh.length - 1;
    let found = -1;
    while (first <= last) {
      const middle = (first + last) >>> 1;
      const blockHigh = table.firstHigh[middle]!;
      const below = blockHigh < high || (blockHigh === high && (table.firstLow.length === 0 || table.firstLow[middle]! <= low));
      if (below) {
        found = middle;
        first = middle + 1;
      } else last = middle - 1;
    }
    return found;
  }

  private lookup4(ip: number): GeoipLiteAnswer | null {
    for (const [low, high] of PRIVATE_RANGES_4) if (ip >= low && ip <= high) return null;
    const block = GeoipLiteFiles.blockOf(this.table4, ip, 0);
    if (block < 0) return null;
    const records = this.table4.block(block);
    // The last record in the block starting at or below the address.
    let first = 0;
    let last = records.length / RECORD_BYTES_4 - 1;
    while (first < last) {
      const middle = (first + last + 1) >>> 1;
      if (records.readUInt32BE(middle * RECORD_BYTES_4) <= ip) first = middle;
      else last = middle - 1;
    }
    const at = first * RECORD_BYTES_4;
    if (records.readUInt32BE(at + 4) < ip) return null;
    return this.located(records.subarray(at, at + RECORD_BYTES_4), 8);
  }

  private lookup6(ip: [number, number]): GeoipLiteAnswer | null {
    const [high, low] = ip;
    const block = GeoipLiteFiles.blockOf(this.table6, high, low);
    if (block < 0) return null;
    const records = this.table6.block(block);
    let first = 0;
    let last = records.length / RECORD_BYTES_6 - 1;
    while (first < last) {
      const middle = (first + last + 1) >>> 1;
      const at = middle * RECORD_BYTES_6;
      if (compare6([records.readUInt32BE(at), records.readUInt32BE(at + 4)], ip) <= 0) first = middle;
      else last = middle - 1;
    }
    const at = first * RECORD_BYTES_6;
    if (compare6([records.readUInt32BE(at + 16), records.readUInt32BE(at + 20)], ip) < 0) return null;
    // geoip-lite starts an IPv6 answer at [0, 0], not [null, null].
    const answer = this.located(records.subarray(at, at + RECORD_BYTES_6), 32);
    if (answer.ll[0] === null) answer.ll = [0, 0];
    return answer;
  }
}
