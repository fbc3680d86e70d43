/**
 * Headless entry: `npm start` / `node dist/cli.js`. Configured by environment variables and a `.env`
 * file in the working directory (see README "Headless mode").
 */
import { apiKeyFromEnv, DEFAULT_CONFIG } from '../core/store/config';
import { bundledModelsFile, configFromEnv, dotEnvWarnings, ENV_VARS, EnvConfigError, KEY_BOUND_VARS, loadDotEnv } from './env';
import { consoleLogger, registerSecret } from '../core/log';
import { buildEngine, loadRegistry } from '../core/proxy';
import { ProxyServer } from '../core/http/server';
import type { ProxyConfig } from '../core/store/config';
import { listModels } from './models';
import { RegistryError } from '../core/store/registry';
import { PROXY_VERSION } from '../core/version';

function usage(): string {
  const rows = ENV_VARS.map((v) => `  ${v.name.padEnd(24)} ${v.description}`).join('\n');
  return `poe-proxy ${PROXY_VERSION} — a local OpenAI-compatible proxy for Poe\n\nUsage: poe-proxy            serve (configure with environment variables or a .env file)\n       poe-proxy models     list Poe's live models with prices; * marks those in the registry (models.yaml)\n\nEnvironment:\n${rows}\n\nA .env in the working directory never overrides the environment, and it may set ${KEY_BOUND_VARS.join(', ')}\nonly when the Poe key comes from that same file (a cloned repository's .env cannot redirect your key).\n`;
}

/** `poe-proxy models` (see src/cli/models.ts). */
async function printModels(config: ProxyConfig, apiKey: string | undefined): Promise<number> {
  let registry;
  try {
    registry = await loadRegistry(config, bundledModelsFile(__dirname));
  } catch (err) {
    process.stderr.write(`poe-proxy: invalid models file: ${(err as Error).message}\n`);
    return 2;
  }
  const r = await listModels({ baseUrl: config.poeBaseUrl, apiKey, registry, out: (t) => process.stdout.write(t) });
  if (r.error) process.stderr.write(`poe-proxy: ${r.error}\n`);
  return r.code;
}

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(usage());
    return 0;
  }
  if (process.argv.includes('--version')) {
    process.stdout.write(`${PROXY_VERSION}\n`);
    return 0;
  }
  const dotEnv = loadDotEnv(process.cwd(), process.env);
  let config;
  try {
    config = configFromEnv(process.env);
  } catch (err) {
    if (err instanceof EnvConfigError) {
      process.stderr.write(`poe-proxy: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const level = (process.env.LOG_LEVEL ?? 'info') as 'debug' | 'info' | 'warn';
  const logger = consoleLogger(['debug', 'info', 'warn'].includes(level) ? level : 'info');
  const apiKey = apiKeyFromEnv(process.env);
  registerSecret(apiKey);
  registerSecret(config.accessKey);
  if (dotEnv) logger.info(`read settings from ${dotEnv.file}`);
  for (const w of dotEnvWarnings(dotEnv)) logger.warn(w);
  if (process.argv[2] === 'models') return printModels(config, apiKey);
  if (!apiKey) logger.warn('no POE_API_KEY set: requests will be answered with 401 until you set it (get a key at https://poe.com/api_key)');

  let built;
  try {
    built = await buildEngine({ config, bundledModelsFile: bundledModelsFile(__dirname), getApiKey: () => apiKey, logger });
  } catch (err) {
    if (err instanceof RegistryError) {
      process.stderr.write(`poe-proxy: invalid models file: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const { engine } = built;
  const server = new ProxyServer(engine);
  const dispose = async (): Promise<void> => {
    await server.close();
    await built.dispose();
  };
  // Signal handlers go in before the proxy listens (and so before it announces itself): a
  // supervisor may send SIGTERM as soon as it reads the "listening" line.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.stderr.write('poe-proxy: forced exit\n');
      process.exit(130);
    }
    stopping = true;
    logger.info(`${signal}: stopping (in-flight requests get ${config.shutdownGraceMs / 1000} s)`);
    dispose().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`poe-proxy: error while stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await server.listen();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const where = `${config.host}:${config.port}`;
    if (e.code === 'EADDRINUSE') {
      process.stderr.write(
        `poe-proxy: port ${config.port} on ${config.host} is already in use (another proxy or program). Stop it or choose another port: PORT=${config.port === DEFAULT_CONFIG.port ? 9877 : config.port + 1} npm start\n`,
      );
    } else if (e.code === 'EACCES') {
      process.stderr.write(`poe-proxy: not allowed to listen on ${where}; pick a port above 1024.\n`);
    } else {
      process.stderr.write(`poe-proxy: cannot listen on ${where}: ${e.message}\n`);
    }
    await dispose();
    return 1;
  }
  const url = server.url!;
  process.stdout.write(
    `Poe proxy ${PROXY_VERSION} listening on ${url} (OpenAI base URL: ${url}/v1), ${engine.registry.models.length} models from ${engine.registry.source}, upstream ${config.poeBaseUrl}\n`,
  );

  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`poe-proxy: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
