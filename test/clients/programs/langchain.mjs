// One scenario of LangChain.js against the proxy, configured as the README says:
// new ChatOpenAI({ model, apiKey, configuration: { baseURL: 'http://127.0.0.1:PORT/v1' } }).
// Env: CLIENT_MODULES (node_modules holding @langchain/openai, @langchain/core, zod), BASE_URL, MODEL, SCENARIO.
// Prints one line `RESULT <json>`; exits non-zero on an error (the message on stderr).
import { execSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const req = createRequire(`${process.env.CLIENT_MODULES}/`);
const load = (name) => import(pathToFileURL(req.resolve(name)).href);
const { ChatOpenAI } = await load('@langchain/openai');
const { tool } = await load('@langchain/core/tools');
const { HumanMessage } = await load('@langchain/core/messages');
const { z } = await load('zod');

const llm = new ChatOpenAI({ model: process.env.MODEL, apiKey: 'poe-proxy', configuration: { baseURL: process.env.BASE_URL }, maxRetries: 0 });
const prompt = 'Say something short.';
const bash = tool(async ({ command }) => execSync(command, { shell: '/bin/bash', encoding: 'utf8' }), {
  name: 'bash',
  description: 'Run a shell command and return its output',
  schema: z.object({ command: z.string() }),
});
const Person = z.object({ name: z.string(), age: z.number().int(), tags: z.array(z.string()) });

let result;
switch (process.env.SCENARIO) {
  case 'prompt':
    result = { text: (await llm.invoke(prompt)).content };
    break;
  case 'stream': {
    const parts = [];
    for await (const chunk of await llm.stream(prompt)) parts.push(chunk.content);
    result = { text: parts.join(''), parts: parts.filter(Boolean).length };
    break;
  }
  case 'tool': {
    // The tool loop a LangChain agent runs: call the model with the tools, run the calls it asks for, repeat.
    const withTools = llm.bindTools([bash]);
    const messages = [new HumanMessage('Run the marker command.')];
    let steps = 0;
    for (;;) {
      const ai = await withTools.invoke(messages);
      messages.push(ai);
      steps++;
      if (!ai.tool_calls?.length || steps > 4) {
        result = { text: ai.content, steps };
        break;
      }
      for (const call of ai.tool_calls) messages.push(await bash.invoke(call));
    }
    break;
  }
  case 'structured': {
    const viaSchema = await llm.withStructuredOutput(Person, { method: 'jsonSchema' }).invoke('Describe a person.');
    result = { jsonSchema: viaSchema };
    break;
  }
  case 'json mode': {
    const viaJsonMode = await llm.withStructuredOutput(Person, { method: 'jsonMode' }).invoke('Describe a person as JSON with name, age and tags.');
    result = { jsonMode: viaJsonMode };
    break;
  }
  default:
    throw new Error(`unknown SCENARIO ${process.env.SCENARIO}`);
}
console.log(`RESULT ${JSON.stringify(result)}`);
