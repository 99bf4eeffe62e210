import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { errors as undiciErrors, type Dispatcher } from 'undici';

/*
 * One HTTP request to an upstream pool on undici's dispatch API, answered with the status,
 * the headers and the body: whole when the answer is small and complete (`wholeUpTo`), else
 * a stream fed by undici with backpressure.
 *
 * Why not `pool.request()`: its layer, made for general use, costs a fifth of the CPU the
 * gateway spends in undici on every request (issue 18's profiles): an AsyncResource per
 * request, a copy of the options for the abort signal, a body stream even for a 200-byte
 * answer that is then concatenated into a fresh ArrayBuffer. The proxy needs none of it:
 * its cancellation is one CallAbort per exchange (below), and a small answer is sent in one
 * write from the chunk undici read. What is left here is the handler contract undici
 * documents (Dispatcher.DispatchHandler), nothing of its internals.
 */

/** An upstream's answer: headers in; the body whole (small, complete) or still streaming. */
export interface UpstreamResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer | Readable;
}

/**
 * The cancellation of an exchange's calls: the client went away, or the deadline passed. It
 * stops the call under way directly: no EventEmitter listener, no AbortController (whose
 * EventTarget signal and Node's abort-listener bookkeeping cost three times as much per
 * request: issue 18's profile, about 2% of the gateway's CPU), nothing allocated per call.
 */
export class CallAbort {
  isAborted = false;
  /** Why: the deadline's error; undefined when the client went away (the call then fails with RequestAbortedError). */
  reason: unknown = undefined;
  /** The call under way (one at a time: attempts and fallbacks follow each other). */
  current: { stop(reason: Error): void } | undefined = undefined;

  abort(reason?: unknown): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.reason = reason;
    this.current?.stop(abortError(reason));
  }
}

/** The error a call fails with when aborted: the reason when it is one. */
function abortError(reason: unknown): Error {
  return reason instanceof Error ? reason : new undiciErrors.RequestAbortedError();
}

/** The request itself, as undici's dispatch takes it (no `signal`: the abort is given apart). */
export type CallOptions = Omit<Dispatcher.DispatchOptions, 'signal'>;

const EMPTY = Buffer.alloc(0);
/** The headers of a call whose answer has not come: shared, so a call allocates no object for them. */
const NO_HEADERS: IncomingHttpHeaders = Object.freeze({});

/**
 * Answers of a GET whose Content-Length is at most this are read whole and sent in one write
 * (status line, headers and body together); larger ones, and any without a length, stream.
 * Streaming a small body through Fastify costs two end-of-stream watchers, a pipe, a chain of
 * stream events and separate socket writes for the head and the body (issue 18's profiles:
 * socket writes and stream plumbing were the largest shares of the proxy path's CPU). On
 * loopback or a LAN a 16 KiB body arrives within the same moment, so the client sees no
 * difference; a body that fails on the way becomes a clean 502 instead of a cut answer.
 */
export const BUFFERED_ANSWER_BYTES = 16 * 1024;

/** An answer read whole whose body broke off after its headers: a bad answer (502), not an unreachable host. */
export class BrokenAnswerError extends Error {
  override readonly name = 'BrokenAnswerError';
}

/** A failed answer's body read and dropped up to this, so its connection is kept; beyond, the connection is closed. */
const DISCARD_LIMIT_BYTES = 128 * 1024;

/** An answer whose body may be read whole: a length within the bound, no transfer coding, a status that has a body. */
function wholeReadable(statusCode: number, headers: IncomingHttpHeaders, upTo: number): boolean {
  if (upTo <= 0 || statusCode < 200 || statusCode === 204 || statusCode === 304 || headers['transfer-encoding'] !== undefined) return false;
  const length = headers['content-length'];
  return typeof length === 'string' && Number(length) <= upTo;
}

/** The body stream of a streamed answer: reading resumes undici, a full buffer pauses it. */
class UpstreamBody extends Readable {
  readonly #call: CallHandler;

  constructor(call: CallHandler) {
    super();
    this.#call = call;
  }

  override _read(): void {
    this.#call.controller?.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Destroyed before its end (the client went away, a write failed): the upstream request stops too.
    if (!this.readableEnded) this.#call.stop(err ?? new undiciErrors.RequestAbortedError());
    callback(err);
  }
}

class CallHandler implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | null = null;
  readonly #resolve: (response: UpstreamResponse) => void;
  readonly #reject: (err: unknown) => void;
  readonly #abort: CallAbort;
  readonly #wholeUpTo: number;
  #settled = false;
  #statusCode = 0;
  #headers: IncomingHttpHeaders = NO_HEADERS;
  /** Whole mode: the chunks read so far (usually one). */
  #chunks: Buffer[] | null = null;
  /** Stream mode: the body handed out. */
  #stream: UpstreamBody | null = null;
  #done = false;

  constructor(abort: CallAbort, wholeUpTo: number, resolve: (response: UpstreamResponse) => void, reject: (err: unknown) => void) {
    this.#abort = abort;
    this.#wholeUpTo = wholeUpTo;
    this.#resolve = resolve;
    this.#reject = reject;
    abort.current = this;
  }

  /** Cancel: before the answer, the promise rejects with `reason`; while streaming, the body fails with it. */
  stop(reason: Error): void {
    if (this.#done) return;
    if (this.controller !== null) this.controller.abort(reason);
    else this.onResponseError(null, reason); // not started yet: undici drops it when it comes up
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#done) {
      controller.abort(new undiciErrors.RequestAbortedError());
      return;
    }
    this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: informational, the real answer follows
    this.#statusCode = statusCode;
    this.#headers = headers;
    if (wholeReadable(statusCode, headers, this.#wholeUpTo)) {
      this.#chunks = [];
      return;
    }
    this.#stream = new UpstreamBody(this);
    this.#settle({ statusCode, headers, body: this.#stream });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#chunks !== null) this.#chunks.push(chunk);
    else if (this.#stream !== null && !this.#stream.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#finish();
    const chunks = this.#chunks;
    if (chunks !== null) {
      const body = chunks.length === 1 ? chunks[0]! : chunks.length === 0 ? EMPTY : Buffer.concat(chunks);
      this.#settle({ statusCode: this.#statusCode, headers: this.#headers, body });
    } else {
      this.#stream?.push(null);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    if (this.#done) return;
    this.#finish();
    if (!this.#settled) {
      this.#settled = true;
      // Headers in, body cut (and not by our own abort): the upstream's answer was bad.
      const broken = this.#chunks !== null && !this.#abort.isAborted;
      this.#reject(broken ? new BrokenAnswerError('upstream answer broke off before its end', { cause: err }) : err);
    } else if (this.#stream !== null && !this.#stream.destroyed) {
      this.#stream.destroy(err);
    }
  }

  #finish(): void {
    this.#done = true;
    if (this.#abort.current === this) this.#abort.current = undefined;
  }

  #settle(response: UpstreamResponse): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(response);
  }
}

/**
 * Send one request on `dispatcher` and wait for its answer: rejected with undici's error when
 * it fails before the answer (connection, timeouts, `abort` with its reason, or
 * RequestAbortedError when it has none); an answer of `wholeUpTo` bytes or less comes with its
 * whole body, read before this resolves.
 */
export function upstreamCall(dispatcher: Dispatcher, opts: CallOptions, abort: CallAbort, wholeUpTo: number): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    if (abort.isAborted) {
      reject(abortError(abort.reason));
      return;
    }
    dispatcher.dispatch(opts, new CallHandler(abort, wholeUpTo, resolve, reject));
  });
}

/**
 * Drop an answer that is not forwarded (a 5xx that is retried): a whole body is already read;
 * a stream is read and dropped up to a bound so its connection can be reused, then cut.
 */
export function discardBody(response: UpstreamResponse): void {
  const body = response.body;
  if (Buffer.isBuffer(body)) return;
  let read = 0;
  body.on('error', ignore);
  body.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > DISCARD_LIMIT_BYTES) body.destroy();
  });
}

function ignore(): void {}
