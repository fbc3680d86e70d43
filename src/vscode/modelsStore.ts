/**
 * The user's model picks: a models.yaml in the extension's global storage (used instead of the bundled
 * one unless the `poeProxy.modelsFile` setting names a file) plus the picked ids in globalState (applied
 * as a filter, so the picks also restrict an explicit models file).
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { renderModelsYaml, type PickedModel } from './modelsYaml';

const STATE_KEY = 'poeProxy.pickedModels';

interface Stored {
  ids: string[];
}

export class ModelsStore {
  constructor(
    private readonly state: vscode.Memento,
    private readonly storageDir: string,
  ) {}

  /** Where Pick Models writes its models.yaml. */
  get picksPath(): string {
    return path.join(this.storageDir, 'models.yaml');
  }

  /** The picks file when the user has picked models (and it still exists). */
  get picksFile(): string | undefined {
    return this.state.get<Stored>(STATE_KEY) && existsSync(this.picksPath) ? this.picksPath : undefined;
  }

  /** The picked ids (undefined = never picked: everything in the models file is exposed). */
  get selected(): string[] | undefined {
    const ids = this.state.get<Stored>(STATE_KEY)?.ids;
    return ids && ids.length > 0 ? [...ids] : undefined;
  }

  async save(picked: readonly PickedModel[], opts: { textMaxTokens: number; source: string }): Promise<void> {
    await fsp.mkdir(this.storageDir, { recursive: true });
    const text = renderModelsYaml(picked, { ...opts, now: new Date() });
    const tmp = `${this.picksPath}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, text, 'utf8');
    await fsp.rename(tmp, this.picksPath);
    await this.state.update(STATE_KEY, { ids: picked.map((p) => p.entry.id) } satisfies Stored);
  }

  /** Forgets the picks (back to the bundled models.yaml). */
  async reset(): Promise<void> {
    await this.state.update(STATE_KEY, undefined);
    await fsp.rm(this.picksPath, { force: true });
  }
}
