// package.json's user-facing parts against the files they name: the walkthrough's command links and
// pages, the icon, the marketplace README's screenshots — all present and packed (.vscodeignore).
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const packed = readFileSync(path.join(root, '.vscodeignore'), 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('!'))
  .map((l) => l.slice(1).trim());
const commands = new Set<string>(pkg.contributes.commands.map((c: { command: string }) => c.command));

function assertPacked(file: string): void {
  assert.ok(existsSync(path.join(root, file)), `${file} exists`);
  assert.ok(packed.includes(file), `${file} is whitelisted in .vscodeignore`);
}

describe('package.json: walkthrough, icon, marketplace README', () => {
  const [walkthrough] = pkg.contributes.walkthroughs;

  it('the walkthrough has the four steps, each completing by itself', () => {
    assert.deepEqual(
      walkthrough.steps.map((s: { id: string }) => s.id),
      ['setKey', 'pointTool', 'sendRequest', 'openHistory'],
    );
    for (const s of walkthrough.steps) assert.ok(s.completionEvents?.length > 0, `${s.id} has completion events`);
  });

  it("the walkthrough's command links and completion commands are contributed commands; its pages are packed", () => {
    for (const s of walkthrough.steps) {
      for (const [, id] of String(s.description).matchAll(/\(command:([\w.]+)\)/g)) assert.ok(commands.has(id), `${s.id}: ${id} is contributed`);
      for (const e of s.completionEvents as string[]) {
        const id = /^onCommand:(.+)$/.exec(e)?.[1];
        if (id) assert.ok(commands.has(id), `${s.id}: ${id} is contributed`);
      }
      assertPacked(s.media.markdown);
    }
  });

  it('the icon is a packed 128×128 PNG; repository and gallery banner are set', () => {
    assertPacked(pkg.icon);
    const png = readFileSync(path.join(root, pkg.icon));
    assert.equal(png.toString('latin1', 1, 4), 'PNG');
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [128, 128]);
    assert.match(pkg.repository.url, /^https:\/\//);
    assert.match(pkg.galleryBanner.color, /^#[0-9a-f]{6}$/i);
  });

  it('the marketplace README is what `npm run package` packs, and every picture it shows is packed', () => {
    assert.match(pkg.scripts.package, /--readme-path MARKETPLACE\.md/);
    const md = readFileSync(path.join(root, 'MARKETPLACE.md'), 'utf8');
    const firstScreen = md.split('\n').slice(0, 12).join('\n');
    assert.ok(!/npm (ci|start|test)/.test(firstScreen), 'no contributor commands at the top');
    const images = [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
    assert.ok(images.length >= 2, 'status bar and history screenshots');
    for (const img of images) assertPacked(img);
  });

  it("the repository README still starts with the contributors' two commands", () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```bash\n([^`]+)```/g)].slice(0, 2).map((m) => m[1].trim());
    assert.deepEqual(blocks, ['npm ci && npm start', 'npm ci && npm test']);
  });

  it("the status bar's internal Show Menu command is hidden from the command palette", () => {
    const entry = pkg.contributes.menus.commandPalette.find((m: { command: string }) => m.command === 'poeProxy.showMenu');
    assert.equal(entry?.when, 'false');
  });
});
