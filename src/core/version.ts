// eslint-disable-next-line @typescript-eslint/no-require-imports
import pkg = require('../../package.json');

export const PROXY_NAME = 'poe-proxy';
export const PROXY_VERSION: string = pkg.version;
