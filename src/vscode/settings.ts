/**
 * The `poeProxy.*` settings as data: which ProxyConfig field each one sets, its type and bounds.
 * Pure (no `vscode` import) so unit tests can check it against package.json and DEFAULT_CONFIG.
 *
 * Defaults live in ONE place, the core DEFAULT_CONFIG; package.json repeats them for the Settings UI
 * and test/unit/vscodeConfig.test.ts fails when the two drift apart.
 */
import { DEFAULT_CONFIG, isLoopbackHost, normaliseBaseUrl, type ConfigOverrides, type ProxyConfig } from '../core/store/config';

export const SECTION = 'poeProxy';
const MIB = 1024 * 1024;

type Kind = 'boolean' | 'integer' | 'number' | 'string' | 'array';

export interface SettingSpec {
  /** Key below `poeProxy.`, e.g. `rateLimit.burst`. */
  key: string;
  kind: Kind;
  minimum?: number;
  maximum?: number;
  /**
   * `application`: read from user settings only (globalValue ?? defaultValue). One window serves the
   * port for every window, so proxy settings are per machine; and a workspace's .vscode/settings.json
   * must never redirect the key (baseUrl) or weaken the guards.
   */
  scope: 'application' | 'window';
  /** The ProxyConfig value this setting overrides, if any; `get` reads DEFAULT_CONFIG's value for the drift test. */
  config?: {
    get(c: Readonly<ProxyConfig>): unknown;
    set(o: ConfigOverrides, value: unknown): void;
  };
  /** What the Settings UI default must be (when the setting has no ProxyConfig counterpart). */
  ownDefault?: unknown;
}

const field = <K extends keyof ProxyConfig>(k: K): SettingSpec['config'] => ({
  get: (c) => c[k],
  set: (o, v) => {
    (o as Record<string, unknown>)[k] = v;
  },
});

const rate = <K extends keyof ProxyConfig['rateLimit']>(k: K): SettingSpec['config'] => ({
  get: (c) => c.rateLimit[k],
  set: (o, v) => {
    o.rateLimit = { ...(o.rateLimit ?? {}), [k]: v };
  },
});

export const SETTINGS: readonly SettingSpec[] = [
  { key: 'autoStart', kind: 'boolean', scope: 'window', ownDefault: true },
  { key: 'port', kind: 'integer', minimum: 1, maximum: 65535, scope: 'application', config: field('port') },
  { key: 'host', kind: 'string', scope: 'application', config: field('host') },
  { key: 'baseURL', kind: 'string', scope: 'application', config: field('poeBaseUrl') },
  {
    key: 'modelsFile',
    kind: 'string',
    scope: 'application',
    // '' in the Settings UI = undefined in the config (the bundled models.yaml, or your picks).
    config: { get: (c) => c.modelsFile ?? '', set: (o, v) => void (o.modelsFile = v === '' ? undefined : (v as string)) },
  },
  { key: 'pointsCutoff', kind: 'number', minimum: 0, scope: 'application', config: field('pointsCutoff') },
  { key: 'pointsPerMessageWarn', kind: 'number', minimum: 0, scope: 'application', config: field('pointsPerMessageWarn') },
  { key: 'maxPointsPerMessage', kind: 'number', minimum: 0, scope: 'application', config: field('maxPointsPerMessage') },
  { key: 'pointsBudgetDaily', kind: 'number', minimum: 0, scope: 'application', config: field('pointsBudgetDaily') },
  { key: 'pointsBudgetMonthly', kind: 'number', minimum: 0, scope: 'application', config: field('pointsBudgetMonthly') },
  { key: 'rateLimit.requestsPerMinute', kind: 'number', minimum: 0, scope: 'application', config: rate('requestsPerMinute') },
  { key: 'rateLimit.burst', kind: 'integer', minimum: 1, scope: 'application', config: rate('burst') },
  { key: 'rateLimit.maxConcurrent', kind: 'integer', minimum: 0, scope: 'application', config: rate('maxConcurrent') },
  { key: 'footer', kind: 'boolean', scope: 'application', config: field('footer') },
  { key: 'streamByDefault', kind: 'boolean', scope: 'application', config: field('streamByDefault') },
  { key: 'contextLimit', kind: 'integer', minimum: 0, scope: 'application', config: field('contextLimit') },
  { key: 'outputReserve', kind: 'integer', minimum: 0, scope: 'application', config: field('outputReserve') },
  { key: 'requireAccessKey', kind: 'boolean', scope: 'application', ownDefault: false },
  {
    key: 'maxBodyMB',
    kind: 'number',
    minimum: 1,
    scope: 'application',
    config: { get: (c) => c.maxBodyBytes / MIB, set: (o, v) => void (o.maxBodyBytes = Math.round((v as number) * MIB)) },
  },
  { key: 'allowedHosts', kind: 'array', scope: 'application', config: field('allowedHosts') },
  { key: 'allowedOrigins', kind: 'array', scope: 'application', config: field('allowedOrigins') },
  { key: 'ledgerRetentionMonths', kind: 'integer', minimum: 0, scope: 'application', config: field('ledgerRetentionMonths') },
];

/**
 * Keys renamed since an earlier version (`baseUrl` became `baseURL` so the Settings editor titles it
 * "Base URL"; VS Code derives the title from the key). The old key is no longer contributed: its user value
 * counts until `migrateRenamedSettings` (src/vscode/config.ts) has moved it to the new key at activation.
 */
export const RENAMED_SETTINGS: ReadonlyArray<{ from: string; to: string }> = [{ from: 'baseUrl', to: 'baseURL' }];

/** `read`, with a renamed setting's old user value standing in while the new key has none. */
function withRenamed(read: SettingsReader): SettingsReader {
  return (key) => {
    const i = read(key);
    const renamed = RENAMED_SETTINGS.find((r) => r.to === key);
    if (!renamed || i?.globalValue !== undefined) return i;
    const old = read(renamed.from)?.globalValue;
    return old === undefined ? i : { ...i, globalValue: old };
  };
}

/** Settings whose change needs a new socket (a restart) rather than `ProxyServer.reconfigure`. */
export const RESTART_KEYS: readonly string[] = ['port', 'host'];

/** The value the Settings UI should show as default for a spec. */
export function specDefault(spec: SettingSpec): unknown {
  return spec.config ? spec.config.get(DEFAULT_CONFIG) : spec.ownDefault;
}

/**
 * What `WorkspaceConfiguration.inspect(key)` returns, reduced to what we look at. Only the user's
 * (global) value and the default count: workspace and folder values are ignored on purpose.
 */
export interface Inspected {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

export function userValue(i: Inspected | undefined): unknown {
  return i?.globalValue !== undefined ? i.globalValue : i?.defaultValue;
}

export type SettingsReader = (key: string) => Inspected | undefined;

export interface ReadSettings {
  overrides: ConfigOverrides;
  autoStart: boolean;
  requireAccessKey: boolean;
  /** The effective value of every setting (after validation and defaults), by key. */
  values: Record<string, unknown>;
  /** Values that were invalid and replaced by the default, for one warning. */
  problems: string[];
}

function validate(spec: SettingSpec, raw: unknown): { ok: true; value: unknown } | { ok: false; why: string } {
  if (spec.kind === 'boolean') return typeof raw === 'boolean' ? { ok: true, value: raw } : { ok: false, why: 'expected true or false' };
  if (spec.kind === 'array') {
    if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string')) return { ok: false, why: 'expected a list of strings' };
    return { ok: true, value: raw.map((v: string) => v.trim()).filter((v) => v !== '') };
  }
  if (spec.kind === 'string') {
    if (typeof raw !== 'string') return { ok: false, why: 'expected a string' };
    const s = raw.trim();
    if (spec.key === 'baseURL') {
      try {
        return { ok: true, value: normaliseBaseUrl(s) };
      } catch (err) {
        return { ok: false, why: (err as Error).message };
      }
    }
    if (spec.key === 'host' && s === '') return { ok: false, why: 'must not be empty' };
    return { ok: true, value: s };
  }
  if (typeof raw !== 'number' || !Number.isFinite(raw)) return { ok: false, why: 'expected a number' };
  if (spec.kind === 'integer' && !Number.isInteger(raw)) return { ok: false, why: 'expected a whole number' };
  if (spec.minimum !== undefined && raw < spec.minimum) return { ok: false, why: `must be ≥ ${spec.minimum}` };
  if (spec.maximum !== undefined && raw > spec.maximum) return { ok: false, why: `must be ≤ ${spec.maximum}` };
  return { ok: true, value: raw };
}

/**
 * Reads every setting through `read` (the `inspect()` of the `poeProxy` section). Application-scoped
 * settings use only the user value; window-scoped ones take the most specific value.
 */
export function readSettings(readRaw: SettingsReader): ReadSettings {
  const read = withRenamed(readRaw);
  const overrides: ConfigOverrides = {};
  const problems: string[] = [];
  let autoStart = true;
  let requireAccessKey = false;
  const values: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    values[spec.key] = specDefault(spec);
    const i = read(spec.key);
    const raw = spec.scope === 'application' ? userValue(i) : (i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue ?? i?.defaultValue);
    if (raw === undefined || raw === null) continue;
    const checked = validate(spec, raw);
    if (!checked.ok) {
      problems.push(`${SECTION}.${spec.key}: ${checked.why}; using the default`);
      continue;
    }
    values[spec.key] = checked.value;
    if (spec.key === 'autoStart') autoStart = checked.value as boolean;
    else if (spec.key === 'requireAccessKey') requireAccessKey = checked.value as boolean;
    else spec.config?.set(overrides, checked.value);
  }
  return { overrides, autoStart, requireAccessKey, values, problems };
}

/** Whether clients must present the local access key: on request, and always beyond loopback. */
export function accessKeyRequired(host: string, requireAccessKey: boolean): boolean {
  return requireAccessKey || !isLoopbackHost(host);
}

/** Which of our settings a configuration change touched (`affects` is `ConfigurationChangeEvent.affectsConfiguration`). */
export function changedKeys(affects: (section: string) => boolean): string[] {
  // A change of a renamed setting's old key counts as one of the new key (its value stands in for it).
  const old = (k: string) => RENAMED_SETTINGS.filter((r) => r.to === k).map((r) => r.from);
  return SETTINGS.map((s) => s.key).filter((k) => [k, ...old(k)].some((key) => affects(`${SECTION}.${key}`)));
}

/** Keys whose effective value differs (a change to an ignored workspace value changes nothing). */
export function diffValues(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  // Lists are compared by content (every read makes new arrays).
  return SETTINGS.map((s) => s.key).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
}
