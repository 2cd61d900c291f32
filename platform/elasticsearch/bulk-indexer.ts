import { errors as esErrors, type Client, type estypes } from '@elastic/elasticsearch';
import { StoreRejectedError, StoreUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { retry } from '../retry';

/** One document to create. */
export interface BulkItem {
  index: string;
  id: string;
  document: object;
}

/** What became of one document: created now, there already (a redelivery), or refused for good. */
export type BulkItemResult = { status: 'created' } | { status: 'duplicate' } | { status: 'rejected'; reason: string };

/** Options of {@link BulkIndexer}. */
export interface BulkIndexerOptions {
  /** Send when this many documents wait (`VIGIL_BULK_MAX_DOCS`). */
  maxDocs: number;
  /** Send when the waiting documents reach this many bytes of NDJSON (`VIGIL_BULK_MAX_BYTES`). */
  maxBytes: number;
  /**
   * Send at most this long after the first waiting document arrived, however few wait
   * (`VIGIL_BULK_FLUSH_MS`); 0 sends what each {@link BulkIndexer.index} call queued at once, as
   * one request (the caller's batch is the bulk request).
   */
  flushMs: number;
  /**
   * Bulk requests in flight at once (`VIGIL_BULK_CONCURRENCY`). Documents queued while that many
   * are out wait, and go together, as one request, when one comes back (group commit): concurrent
   * chunks share requests instead of each paying a request of its own. @defaultValue 2
   */
  concurrency?: number;
  /** Attempts after the first for documents Elasticsearch pushed back (429, 5xx). @defaultValue 3 */
  retries?: number;
  /** First backoff delay. @defaultValue 200 */
  initialDelayMs?: number;
  /** Longest backoff delay. @defaultValue 2000 */
  maxDelayMs?: number;
  logger?: Logger;
}

interface Pending {
  /** The action line and the document, each followed by a newline, as UTF-8: encoded once, here. */
  lines: Buffer;
  resolve: (result: BulkItemResult) => void;
  reject: (error: unknown) => void;
}

const RETRIABLE_STATUS = new Set([408, 429, 502, 503, 504]);

/**
 * Whether Elasticsearch refused a document for a reason outside it: its credentials lack a
 * privilege (403 `security_exception`, say `indices:admin/auto_create` on a new day's index), the
 * index is blocked (`cluster_block_exception`: read-only, the disk's flood stage), the index does
 * not exist and may not be created (404 `index_not_found_exception`, `action.auto_create_index`
 * off), or the cluster may open no more shards (`validation_exception`). Every document of that
 * index would be refused the same way until an operator fixes it, so none is a dead letter: they
 * are pushed back like a 429, and the partition waits, logging the reason, until it is fixed.
 */
export function refusedByEnvironment(status: number, type: string | undefined, reason: string | undefined): boolean {
  if (status === 401 || status === 403 || type === 'cluster_block_exception') return true;
  if (type === 'index_not_found_exception') return true;
  return type === 'validation_exception' && /\bshards?\b/.test(reason ?? '');
}

/**
 * What the indexer reads of a bulk response: each item's status, and the error of a refused one.
 * Elasticsearch otherwise answers about 200 bytes per item (index, id, version, shards, sequence
 * number) that the client would parse for every document (docs/performance.md).
 */
const BULK_RESPONSE_FILTER = 'items.*.status,items.*.error.type,items.*.error.reason';

/**
 * Buffers `create` operations and sends them as bulk requests on size, count, or a wall-clock
 * timer that starts with the first waiting document and is never pushed back by later ones, so
 * a lone event is searchable within `flushMs` + refresh; with `flushMs` 0, each call's documents
 * go at once. (helpers.bulk waits for 5 MB and
 * restarts its idle timer on every document, so a steady trickle could wait forever.)
 *
 * `op_type: create` with the event id as `_id` makes redelivery harmless: a 409 counts as done.
 */
export class BulkIndexer {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The waiting documents may go however few they are (flushMs 0, the timer fired, or a flush). */
  private due = false;
  private readonly inflight = new Set<Promise<void>>();
  private readonly options: Required<Omit<BulkIndexerOptions, 'logger'>>;

  /** Running totals, for the CLI, the demo and tests. */
  readonly stats = { requests: 0, created: 0, duplicates: 0, rejected: 0, retries: 0 };

  constructor(
    private readonly client: Client,
    options: BulkIndexerOptions,
    private readonly logger?: Logger,
  ) {
    this.options = {
      maxDocs: options.maxDocs,
      maxBytes: options.maxBytes,
      flushMs: options.flushMs,
      concurrency: options.concurrency ?? 2,
      retries: options.retries ?? 3,
      initialDelayMs: options.initialDelayMs ?? 200,
      maxDelayMs: options.maxDelayMs ?? 2000,
    };
    this.logger = logger ?? options.logger;
  }

  /**
   * Queues documents; resolves once Elasticsearch acknowledged every one of them.
   * @throws StoreUnavailableError when Elasticsearch still pushes back after the retries.
   */
  index(items: readonly BulkItem[]): Promise<BulkItemResult[]> {
    return Promise.all(this.queue(items));
  }

  /**
   * As {@link index}, but each document settles on its own: when some are still pushed back after
   * the retries, the caller also learns which ones Elasticsearch did take (to count them once).
   */
  indexSettled(items: readonly BulkItem[]): Promise<PromiseSettledResult<BulkItemResult>[]> {
    return Promise.allSettled(this.queue(items));
  }

  /** Queues documents, one promise each: its result once acknowledged. */
  private queue(items: readonly BulkItem[]): Promise<BulkItemResult>[] {
    const results = items.map(
      (item) =>
        new Promise<BulkItemResult>((resolve, reject) => {
          // The action line as JSON.stringify({ create: { _index, _id } }) writes it, without the objects.
          const lines = Buffer.from(`{"create":{"_index":${JSON.stringify(item.index)},"_id":${JSON.stringify(item.id)}}}\n${JSON.stringify(item.document)}\n`);
          this.pending.push({ lines, resolve, reject });
          this.pendingBytes += lines.length;
        }),
    );
    if (this.options.flushMs === 0) this.due = true;
    else if (this.pending.length > 0 && this.timer === undefined && !this.due) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.due = true;
        this.pump();
      }, this.options.flushMs);
    }
    this.pump();
    return results;
  }

  /** Sends what waits and resolves when it and every request in flight have finished. */
  async flush(): Promise<void> {
    this.due = true;
    this.pump();
    while (this.inflight.size > 0 || this.pending.length > 0) {
      await Promise.allSettled([...this.inflight]);
      this.due = true;
      this.pump();
    }
  }

  /**
   * Starts requests while fewer than `concurrency` are in flight: full ones (`maxDocs` or
   * `maxBytes`) always, the rest only once due. What waits behind a full set of requests goes
   * when one of them comes back, together with whatever else was queued meanwhile.
   */
  private pump(): void {
    while (this.pending.length > 0 && this.inflight.size < this.options.concurrency) {
      const full = this.pending.length >= this.options.maxDocs || this.pendingBytes >= this.options.maxBytes;
      if (!full && !this.due) return;
      this.start(this.take());
    }
    if (this.pending.length === 0) {
      this.due = false;
      if (this.timer !== undefined) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    }
  }

  /** The first waiting documents, up to `maxDocs` and `maxBytes` (at least one). */
  private take(): Pending[] {
    let count = 0;
    let bytes = 0;
    for (const item of this.pending) {
      if (count > 0 && (count >= this.options.maxDocs || bytes + item.lines.length > this.options.maxBytes)) break;
      count++;
      bytes += item.lines.length;
    }
    const batch = this.pending.splice(0, count);
    this.pendingBytes -= bytes;
    return batch;
  }

  private start(batch: Pending[]): void {
    const request = this.sendWithRetries(batch).finally(() => {
      this.inflight.delete(request);
      this.pump();
    });
    this.inflight.add(request);
  }

  private async sendWithRetries(batch: Pending[]): Promise<void> {
    let remaining = batch;
    try {
      await retry(
        async () => {
          const { retry: again, refusal } = await this.sendOnce(remaining);
          remaining = again;
          if (refusal !== undefined) {
            throw new StoreUnavailableError('elasticsearch', `${refusal.count} of ${remaining.length} documents refused for a reason outside them, kept until it is fixed: ${refusal.reason}`);
          }
          if (remaining.length > 0) {
            throw new StoreUnavailableError('elasticsearch', `${remaining.length} documents pushed back (429/5xx)`);
          }
        },
        {
          retries: this.options.retries,
          initialDelayMs: this.options.initialDelayMs,
          maxDelayMs: this.options.maxDelayMs,
          onRetry: (error, attempt, delayMs) => {
            this.stats.retries++;
            this.logger?.warn({ err: error, attempt, delayMs, documents: remaining.length }, 'bulk request retry');
          },
        },
      );
    } catch (error) {
      for (const item of remaining) item.reject(error);
    }
  }

  /** One bulk request; returns the items to try again, and how many of them the environment refused, with the first reason. */
  private async sendOnce(batch: Pending[]): Promise<{ retry: Pending[]; refusal?: { count: number; reason: string } }> {
    // One Buffer for the whole body: the client sends it as it is, where an array of strings is
    // concatenated into one string, measured (content-length) and encoded again per request.
    const body = Buffer.concat(batch.map((item) => item.lines));
    this.stats.requests++;
    let response: Partial<Pick<estypes.BulkResponse, 'items'>>;
    try {
      response = await this.client.transport.request<Partial<Pick<estypes.BulkResponse, 'items'>>>({
        method: 'POST',
        path: '/_bulk',
        querystring: { refresh: 'false', filter_path: BULK_RESPONSE_FILTER },
        bulkBody: body,
      });
    } catch (error) {
      throw classifyClientError(error);
    }
    const items = response.items ?? [];
    // One item per operation, in order: anything else is not an answer to this request.
    if (items.length !== batch.length) {
      throw new StoreUnavailableError('elasticsearch', `bulk response had ${items.length} items for ${batch.length} documents`);
    }
    // An item that answers neither `create` nor `index` is no answer either: none is settled, so
    // the request is retried whole rather than leaving that document's chunk waiting for ever.
    const unanswered = items.findIndex((entry) => (entry.create ?? entry.index) === undefined);
    if (unanswered >= 0) {
      throw new StoreUnavailableError('elasticsearch', `bulk response item ${unanswered} answers ${Object.keys(items[unanswered] ?? {}).join(', ') || 'nothing'}, not create or index`);
    }
    const retryable: Pending[] = [];
    let refusal: { count: number; reason: string } | undefined;
    items.forEach((entry, position) => {
      const item = batch[position];
      const outcome = entry.create ?? entry.index;
      if (item === undefined || outcome === undefined) return;
      if (outcome.status === 201 || outcome.status === 200) {
        this.stats.created++;
        item.resolve({ status: 'created' });
      } else if (outcome.status === 409) {
        this.stats.duplicates++;
        item.resolve({ status: 'duplicate' });
      } else if (RETRIABLE_STATUS.has(outcome.status) || outcome.status >= 500) {
        retryable.push(item);
      } else if (refusedByEnvironment(outcome.status, outcome.error?.type, outcome.error?.reason ?? undefined)) {
        retryable.push(item);
        refusal ??= { count: 0, reason: `${outcome.status} ${outcome.error?.type ?? ''}: ${outcome.error?.reason ?? ''}` };
        refusal.count++;
      } else {
        this.stats.rejected++;
        const reason = outcome.error ? `${outcome.error.type}: ${outcome.error.reason ?? ''}` : `status ${outcome.status}`;
        item.resolve({ status: 'rejected', reason });
      }
    });
    return refusal === undefined ? { retry: retryable } : { retry: retryable, refusal };
  }
}

/** Whole-request failures: a malformed request (400) is ours to fix; anything else may pass later. */
function classifyClientError(error: unknown): Error {
  if (error instanceof esErrors.ResponseError && error.statusCode === 400) {
    return new StoreRejectedError('elasticsearch', 'bulk request refused (400)', error);
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new StoreUnavailableError('elasticsearch', `bulk request failed: ${detail}`, error);
}
