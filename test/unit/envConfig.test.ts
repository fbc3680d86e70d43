import { strict as assert } from 'node:assert';
import { apiKeyFromEnv, DEFAULT_CONFIG } from '../../src/core/store/config';
import { configFromEnv, EnvConfigError, parseDotEnv } from '../../src/cli/env';

describe('headless configuration', () => {
  it('defaults match DEFAULT_CONFIG with an empty environment', () => {
    const c = configFromEnv({});
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 9876);
    assert.equal(c.pointsCutoff, DEFAULT_CONFIG.pointsCutoff);
    assert.equal(c.poeBaseUrl, 'https://api.poe.com');
  });

  it("reads the seed's variables and ours", () => {
    const c = configFromEnv({
      PORT: '9000',
      POE_BASE_URL: 'http://127.0.0.1:1234/v1/',
      POINTS_CUTOFF: '0',
      POINTS_PER_MESSAGE_WARN: '1_000',
      MAX_POINTS_PER_MESSAGE: '50000',
      STREAM_BY_DEFAULT: 'yes',
      FOOTER: 'off',
      RATE_LIMIT_RPM: '30',
      ALLOWED_ORIGINS: 'a, b',
      MAX_BODY_MB: '2',
    });
    assert.equal(c.port, 9000);
    assert.equal(c.poeBaseUrl, 'http://127.0.0.1:1234', 'trailing /v1 and slash removed');
    assert.equal(c.pointsCutoff, 0);
    assert.equal(c.pointsPerMessageWarn, 1000);
    assert.equal(c.maxPointsPerMessage, 50000);
    assert.equal(c.streamByDefault, true);
    assert.equal(c.footer, false);
    assert.equal(c.rateLimit.requestsPerMinute, 30);
    assert.equal(c.rateLimit.burst, DEFAULT_CONFIG.rateLimit.burst);
    assert.deepEqual(c.allowedOrigins, ['a', 'b']);
    assert.equal(c.maxBodyBytes, 2 * 1024 * 1024);
  });

  it('explains bad values', () => {
    assert.throws(
      () => configFromEnv({ PORT: 'abc' }),
      (e: unknown) => e instanceof EnvConfigError && /PORT="abc"/.test(e.message),
    );
    assert.throws(() => configFromEnv({ FOOTER: 'maybe' }), /FOOTER="maybe" must be true or false/);
    assert.throws(() => configFromEnv({ POE_BASE_URL: 'ftp://x' }), /POE_BASE_URL/);
  });

  it('takes POE_API_KEY, else POE_TOKEN', () => {
    assert.equal(apiKeyFromEnv({ POE_TOKEN: ' t ' }), 't');
    assert.equal(apiKeyFromEnv({ POE_API_KEY: 'k', POE_TOKEN: 't' }), 'k');
    assert.equal(apiKeyFromEnv({}), undefined);
  });

  it('parses .env files', () => {
    const env = parseDotEnv('# c\nexport POE_API_KEY="abc def"\nPORT=9000 # trailing\nBAD LINE\nQ=\'x#y\'\n');
    assert.deepEqual(env, { POE_API_KEY: 'abc def', PORT: '9000', Q: 'x#y' });
  });
});
