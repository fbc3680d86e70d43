import pkg = require('../../package.json');

export const PROXY_NAME = 'poe-proxy';
export const PROXY_VERSION: string = pkg.version;
