/**
 * "Poe: Pick Models": Poe's live GET /v1/models merged with models.yaml in a multi-select QuickPick
 * grouped by modality; the picks decide what the proxy's /v1/models exposes and are saved as a
 * models.yaml in the extension's global storage.
 */
import * as vscode from 'vscode';
import type { Logger } from '../core/log';
import { MODALITIES, ModelRegistry, type Modality } from '../core/store/registry';
import type { UpstreamClient } from '../core/poe/upstream';
import type { Config } from './config';
import type { ModelsStore } from './modelsStore';
import { candidateDetail, describePrice, mergeCandidates, parseLiveModels, type Candidate, type LiveModel } from './modelsYaml';
import type { ProxyController } from './proxyController';
import type { WindowEngine } from './windowEngine';

export interface PickerDeps {
  config: Config;
  models: ModelsStore;
  controller: ProxyController;
  /** The window's engine: its upstream client asks Poe for the live list; it names the models file the picks come from. */
  engine: WindowEngine;
  logger: Logger;
}

const MODALITY_LABEL: Record<Modality, string> = { text: 'Text', image: 'Image', video: 'Video', audio: 'Audio' };

/** Fetches Poe's live model list (through the engine's upstream client: the configured base URL and key); undefined (logged) when it cannot. */
export async function fetchLiveModels(upstream: UpstreamClient, logger: Logger, timeoutMs = 15_000): Promise<{ models?: LiveModel[]; error?: string }> {
  try {
    const res = await upstream.getJson('/v1/models', AbortSignal.timeout(timeoutMs));
    if (res.status < 200 || res.status >= 300) return { error: `HTTP ${res.status}` };
    const models = parseLiveModels(res.body);
    if (models.length === 0) return { error: 'an empty or unexpected model list' };
    return { models };
  } catch (err) {
    logger.warn(`pick models: cannot list Poe's models: ${(err as Error).message}`);
    return { error: (err as Error).message };
  }
}

interface Item extends vscode.QuickPickItem {
  candidate?: Candidate;
}

/** The models listed now first, then the others; each part grouped by kind under a separator. */
function toItems(candidates: Candidate[]): Item[] {
  const items: Item[] = [];
  const someUnpicked = candidates.some((c) => !c.picked);
  for (const picked of [true, false]) {
    for (const modality of MODALITIES) {
      const group = candidates.filter((c) => c.picked === picked && c.entry.modality === modality).sort((a, b) => a.entry.id.localeCompare(b.entry.id));
      if (group.length === 0) continue;
      const label = MODALITY_LABEL[modality];
      items.push({ label: someUnpicked ? `${label} — ${picked ? 'listed now' : 'more from Poe'}` : label, kind: vscode.QuickPickItemKind.Separator });
      for (const c of group) {
        items.push({
          label: c.entry.id,
          description: c.liveOnly && c.entry.base === 0 && c.entry.per1kTokens === 0 ? 'price unknown' : describePrice(c.entry),
          detail: candidateDetail(c, label),
          picked: c.picked,
          candidate: c,
        });
      }
    }
  }
  return items;
}

async function showPicker(candidates: Candidate[], liveError: string | undefined): Promise<Candidate[] | undefined> {
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = 'Poe: Pick Models';
  qp.placeholder = liveError
    ? `Poe's own list could not be read (${liveError}); these are the models in models.yaml`
    : 'Tick the models your tools should see; type a name or a kind (text, image, …) to search';
  qp.canSelectMany = true;
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.items = toItems(candidates);
  qp.selectedItems = qp.items.filter((i) => i.picked);
  return new Promise((resolve) => {
    let done = false;
    qp.onDidAccept(() => {
      const chosen = qp.selectedItems.map((i) => i.candidate).filter((c): c is Candidate => Boolean(c));
      if (chosen.length === 0) {
        qp.placeholder = 'Pick at least one model (or press Escape to keep the current ones)';
        return;
      }
      done = true;
      resolve(chosen);
      qp.hide();
    });
    qp.onDidHide(() => {
      if (!done) resolve(undefined);
      qp.dispose();
    });
    qp.show();
  });
}

/**
 * Runs the picker. `ids` (tests, scripts) skips the UI and picks those models; ids unknown to both
 * models.yaml and Poe's live list are ignored. Returns the saved ids, or undefined when cancelled.
 */
export async function pickModels(deps: PickerDeps, ids?: readonly string[]): Promise<string[] | undefined> {
  let source: ModelRegistry;
  try {
    source = await deps.engine.pickSource();
  } catch (err) {
    void vscode.window.showErrorMessage(`Poe: cannot read the models file: ${(err as Error).message}`, 'Open Models File').then((a) => {
      if (a) void vscode.commands.executeCommand('poeProxy.openModelsFile');
    });
    return undefined;
  }
  let previous: ModelRegistry | undefined;
  const picksFile = deps.models.picksFile;
  if (picksFile) previous = await ModelRegistry.load(picksFile).catch(() => undefined);

  const fetched = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "Poe: fetching Poe's model list…", cancellable: false },
    () => fetchLiveModels(deps.engine.core.upstream, deps.logger),
  );
  const candidates = mergeCandidates(source, previous, fetched.models, deps.models.selected);

  let chosen: Candidate[] | undefined;
  if (ids) {
    const wanted = new Set(ids.map((i) => i.toLowerCase()));
    chosen = candidates.filter((c) => wanted.has(c.entry.id.toLowerCase()));
    if (chosen.length === 0) return undefined;
  } else {
    if (fetched.error) void vscode.window.showWarningMessage(`Poe: could not list Poe's live models (${fetched.error}); showing models.yaml only.`);
    chosen = await showPicker(candidates, fetched.error);
    if (!chosen) return undefined;
  }
  await deps.models.save(chosen, { textMaxTokens: source.textMaxTokens, source: source.source });
  await deps.controller.reloadModels();
  const saved = chosen.map((c) => c.entry.id);
  const explicit = deps.config.base.modelsFile;
  const dropped = explicit ? chosen.filter((c) => c.liveOnly).length : 0;
  deps.logger.info(`picked ${saved.length} models (saved to ${deps.models.picksPath})`);
  if (!ids) {
    void vscode.window.showInformationMessage(
      `Poe proxy lists ${saved.length} model${saved.length === 1 ? '' : 's'} now.` +
        (dropped > 0 ? ` ${dropped} of them are not in your poeProxy.modelsFile and stay hidden until you add them there.` : ''),
    );
  }
  return saved;
}
