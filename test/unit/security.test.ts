import { strict as assert } from 'node:assert';
import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../../src/core/errors';
import { allowedHostValues, checkAccessKey, checkHost, checkJsonContentType, checkOrigin, generateAccessKey, keysMatch } from '../../src/core/security';

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
    for (const h of ['127.0.0.1:9876', 'localhost:9876', '[::1]:9876', 'LOCALHOST:9876', 'proxy.lan:9876']) assert.equal(status(() => checkHost(req({ host: h }), hosts)), undefined, h);
    for (const h of ['', 'evil.com', 'evil.com:9876', '127.0.0.1:80', 'localhost']) assert.equal(status(() => checkHost(req({ host: h }), hosts)), 403, h);
  });

  it('refuses foreign origins and cross-site fetches, allows listed origins', () => {
    assert.equal(status(() => checkOrigin(req({ origin: 'https://evil.example' }), cfg)), 403);
    assert.equal(status(() => checkOrigin(req({ 'sec-fetch-site': 'cross-site' }), cfg)), 403);
    assert.equal(checkOrigin(req({ origin: 'vscode-webview://abc' }), cfg), 'vscode-webview://abc');
    assert.equal(checkOrigin(req({}), cfg), undefined);
  });

  it('requires a JSON content type for POST bodies', () => {
    assert.equal(status(() => checkJsonContentType(req({ 'content-type': 'text/plain' }))), 415);
    assert.equal(status(() => checkJsonContentType(req({}))), 415);
    assert.equal(status(() => checkJsonContentType(req({ 'content-type': 'application/json; charset=utf-8' }))), undefined);
  });

  it('checks the access key as Bearer or x-api-key', () => {
    const key = generateAccessKey();
    const c = { ...cfg, accessKey: key };
    assert.equal(status(() => checkAccessKey(req({}), c)), 401);
    assert.equal(status(() => checkAccessKey(req({ authorization: 'Bearer nope' }), c)), 401);
    assert.equal(status(() => checkAccessKey(req({ authorization: `Bearer ${key}` }), c)), undefined);
    assert.equal(status(() => checkAccessKey(req({ 'x-api-key': key }), c)), undefined);
    assert.ok(keysMatch(key, key));
    assert.ok(!keysMatch(key, key + 'x'));
    assert.notEqual(generateAccessKey(), key);
  });
});
