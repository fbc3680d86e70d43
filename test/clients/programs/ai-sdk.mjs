// One scenario of the Vercel AI SDK against the proxy, configured as the README says:
// createOpenAICompatible({ name, baseURL: 'http://127.0.0.1:PORT/v1', apiKey, includeUsage, supportsStructuredOutputs }).
// Env: CLIENT_MODULES (node_modules holding ai, @ai-sdk/openai-compatible, zod), BASE_URL, MODEL, SCENARIO.
// Prints one line `RESULT <json>`; exits non-zero on an error (the message on stderr).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const req = createRequire(`${process.env.CLIENT_MODULES}/`);
const load = (name) => import(pathToFileURL(req.resolve(name)).href);
const { generateText, streamText, generateObject, Output, tool, stepCountIs } = await load('ai');
const { createOpenAICompatible } = await load('@ai-sdk/openai-compatible');
const { z } = await load('zod');

const poe = createOpenAICompatible({ name: 'poe', baseURL: process.env.BASE_URL, apiKey: 'poe-proxy', includeUsage: true, supportsStructuredOutputs: true });
const model = poe(process.env.MODEL);
const prompt = 'Say something short.';
const shell = tool({
  description: 'Run a shell command and return its output',
  inputSchema: z.object({ command: z.string() }),
  execute: async ({ command }) => {
    const { execSync } = await import('node:child_process');
    return execSync(command, { shell: '/bin/bash', encoding: 'utf8' });
  },
});
const Person = z.object({ name: z.string(), age: z.number().int(), tags: z.array(z.string()) });

let result;
switch (process.env.SCENARIO) {
  case 'prompt':
    result = { text: (await generateText({ model, prompt })).text };
    break;
  case 'stream': {
    const s = streamText({ model, prompt });
    const parts = [];
    for await (const d of s.textStream) parts.push(d);
    result = { text: parts.join(''), parts: parts.length, usage: await s.usage };
    break;
  }
  case 'tool': {
    const r = await generateText({ model, prompt: 'Run the marker command.', tools: { bash: shell }, stopWhen: stepCountIs(4) });
    result = { text: r.text, steps: r.steps.length };
    break;
  }
  case 'structured': {
    const o = await generateObject({ model, schema: Person, prompt: 'Describe a person.' });
    const t = await generateText({ model, prompt: 'Describe a person.', output: Output.object({ schema: Person }) });
    result = { object: o.object, output: t.output };
    break;
  }
  default:
    throw new Error(`unknown SCENARIO ${process.env.SCENARIO}`);
}
console.log(`RESULT ${JSON.stringify(result)}`);
