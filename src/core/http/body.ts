/**
 * Reading a request body: a size cap, a deadline (slowloris), strict UTF-8, and JSON parsing with a hint.
 */
import type * as http from 'node:http';
import { badRequest, ProxyError } from './errors';
import type { Logger } from '../log';

/** Reads the body with a size cap and a deadline (slowloris). */
export function readBody(req: http.IncomingMessage, limits: { maxBodyBytes: number; bodyTimeoutMs: number }, logger: Logger): Promise<string> {
  const { maxBodyBytes, bodyTimeoutMs } = limits;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBodyBytes) {
    req.resume();
    return Promise.reject(tooLarge(maxBodyBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      // The 408 goes out with Connection: close, which ends the socket; destroy later only as a backstop.
      req.removeAllListeners('data');
      req.pause();
      reject(
        new ProxyError(
          408,
          `The request body did not arrive within ${Math.round(bodyTimeoutMs / 1000)} s. Send the whole body at once, or check what is slowing the client down.`,
          'invalid_request_error',
          'body_timeout',
          null,
          { connection: 'close' },
        ),
      );
      setTimeout(() => req.destroy(), 2_000).unref();
    }, bodyTimeoutMs);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBodyBytes) {
        clearTimeout(timer);
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(maxBodyBytes));
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => {
      clearTimeout(timer);
      const buf = Buffer.concat(chunks);
      // Invalid UTF-8 would otherwise turn silently into U+FFFD and reach Poe.
      const text = buf.toString('utf8');
      if (text.includes('\uFFFD') && !isValidUtf8(buf)) {
        reject(badRequest('The request body is not valid UTF-8.', null, 'invalid_encoding'));
        return;
      }
      resolve(text);
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      // A client that goes away mid-upload is an ordinary event, not a proxy failure: one debug line.
      logger.debug(`client closed the connection before the request body was complete (${err.message})`);
      reject(new ProxyError(400, 'The client closed the connection before the request body was complete.', 'invalid_request_error', 'client_closed'));
    });
  });
}

export function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw badRequest(`The request body is not valid JSON (${(err as Error).message}). Send a JSON object.`, null, 'invalid_json');
  }
}

function tooLarge(max: number): ProxyError {
  return new ProxyError(
    413,
    `The request body is larger than ${Math.round(max / 1024 / 1024)} MiB. Shorten the conversation, or raise MAX_BODY_MB (headless proxy).`,
    'invalid_request_error',
    'body_too_large',
    null,
    { connection: 'close' },
  );
}

function isValidUtf8(buf: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}
