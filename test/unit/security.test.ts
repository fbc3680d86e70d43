import { strict as assert } from 'node:assert';
import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../../src/core/http/errors';
import { forgetSecret, registerSecret } from '../../src/core/log';
import {
  allowedHostValues,
  checkAccessKey,
  checkHost,
  checkJsonContentType,
  checkOrigin,
  generateAccessKey,
  keysMatch,
  presentedKey,
} from '../../src/core/http/security';

const req = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;
const status = (fn: () => unknown): number | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as ProxyError).status;
  }
};

describe('security gate', () => {
  const cfg = { port: 9876, allowedHosts: ['proxy.lan:9876'], allowedOrigins: ['vscode-webview://abc'], accessKey: undefined as string | undefined };
  const hosts = allowedHostValues(cfg);

  it('accepts loopback hosts with our port and configured extras only', () => {
    for (const h of ['127.0.0.1:9876', 'localhost:9876', '[::1]:9876', 'LOCALHOST:9876', 'proxy.lan:9876'])
      assert.equal(
        status(() => checkHost(req({ host: h }), hosts)),
        undefined,
        h,
      );
    for (const h of ['', 'evil.com', 'evil.com:9876', '127.0.0.1:80', 'localhost'])
      assert.equal(
        status(() => checkHost(req({ host: h }), hosts)),
        403,
        h,
      );
  });

  it('refuses a request with two Host headers (Node would silently keep the first)', () => {
    const two = { headers: { host: '127.0.0.1:9876' }, rawHeaders: ['Host', '127.0.0.1:9876', 'host', 'evil.com'] } as unknown as IncomingMessage;
    assert.equal(
      status(() => checkHost(two, hosts)),
      400,
    );
    const one = { headers: { host: '127.0.0.1:9876' }, rawHeaders: ['Host', '127.0.0.1:9876', 'X-Host', 'evil.com'] } as unknown as IncomingMessage;
    assert.equal(
      status(() => checkHost(one, hosts)),
      undefined,
    );
  });

  it('refuses foreign origins and cross-site fetches, allows listed origins', () => {
    assert.equal(
      status(() => checkOrigin(req({ origin: 'https://evil.example' }), cfg)),
      403,
    );
    assert.equal(
      status(() => checkOrigin(req({ 'sec-fetch-site': 'cross-site' }), cfg)),
      403,
    );
    assert.equal(checkOrigin(req({ origin: 'vscode-webview://abc' }), cfg), 'vscode-webview://abc');
    assert.equal(checkOrigin(req({}), cfg), undefined);
  });

  it('requires a JSON content type for POST bodies', () => {
    assert.equal(
      status(() => checkJsonContentType(req({ 'content-type': 'text/plain' }))),
      415,
    );
    assert.equal(
      status(() => checkJsonContentType(req({}))),
      415,
    );
    assert.equal(
      status(() => checkJsonContentType(req({ 'content-type': 'application/json; charset=utf-8' }))),
      undefined,
    );
  });

  it('checks the access key as Bearer or x-api-key', () => {
    const key = generateAccessKey();
    const c = { ...cfg, accessKey: key };
    assert.equal(
      status(() => checkAccessKey(req({}), c)),
      401,
    );
    assert.equal(
      status(() => checkAccessKey(req({ authorization: 'Bearer nope' }), c)),
      401,
    );
    assert.equal(
      status(() => checkAccessKey(req({ authorization: `Bearer ${key}` }), c)),
      undefined,
    );
    assert.equal(
      status(() => checkAccessKey(req({ 'x-api-key': key }), c)),
      undefined,
    );
    assert.ok(keysMatch(key, key));
    assert.ok(!keysMatch(key, key + 'x'));
    assert.notEqual(generateAccessKey(), key);
  });

  it('treats same-site fetches like cross-site ones, and lets same-origin, none and non-browser requests through', () => {
    assert.equal(
      status(() => checkOrigin(req({ 'sec-fetch-site': 'same-site' }), cfg)),
      403,
    );
    for (const site of ['same-origin', 'none'])
      assert.equal(
        status(() => checkOrigin(req({ 'sec-fetch-site': site }), cfg)),
        undefined,
        site,
      );
    assert.equal(
      status(() => checkOrigin(req({ origin: 'null' }), cfg)),
      403,
      'sandboxed pages send Origin: null',
    );
    assert.equal(
      status(() => checkOrigin(req({ origin: 'https://evil.example' }), { ...cfg, allowedOrigins: [] })),
      403,
    );
  });

  it('accepts only JSON media types (+json suffixes included), case-insensitively', () => {
    for (const t of ['APPLICATION/JSON', 'application/vnd.api+json', 'application/json;charset=UTF-8'])
      assert.equal(
        status(() => checkJsonContentType(req({ 'content-type': t }))),
        undefined,
        t,
      );
    for (const t of ['application/jsonx', 'application/x-json', 'text/json', 'multipart/form-data', 'application/x-www-form-urlencoded'])
      assert.equal(
        status(() => checkJsonContentType(req({ 'content-type': t }))),
        415,
        t,
      );
  });

  it('reads the presented key from Bearer (any case) or x-api-key, and compares keys of any length safely', () => {
    assert.equal(presentedKey(req({ authorization: 'bearer   abc ' })), 'abc');
    assert.equal(presentedKey(req({ authorization: 'Basic abc' })), undefined);
    assert.equal(presentedKey(req({ 'x-api-key': ' k ' })), 'k');
    assert.equal(keysMatch('', 'long-expected-key'), false);
    assert.equal(keysMatch('x'.repeat(10_000), 'short'), false);
  });

  it('never puts a registered secret or a bearer token in an error message', () => {
    const secret = 'poe-secret-for-the-unit-test';
    registerSecret(secret);
    try {
      const e = new ProxyError(401, `Poe answered 401: Incorrect API key provided: ${secret} (Authorization: Bearer abcdefgh12345678)`, 'authentication_error');
      assert.ok(!e.message.includes(secret));
      assert.ok(!JSON.stringify(e.toBody()).includes('abcdefgh12345678'));
      assert.match(e.message, /Incorrect API key provided: \[redacted\]/);
    } finally {
      forgetSecret(secret);
    }
  });
});
