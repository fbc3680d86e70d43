/** A minimal valid request body for each of the proxy's three generation endpoints (one per dialect). */
export const chatBody = (stream: boolean) => ({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'hi' }], stream });
export const messagesBody = (stream: boolean) => ({ model: 'Claude-Sonnet-4.5', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }], stream });
export const responsesBody = (stream: boolean) => ({ model: 'GPT-4.1', input: 'hi', stream });

export const ENDPOINTS = [
  { name: 'chat', path: '/v1/chat/completions', body: chatBody },
  { name: 'messages', path: '/v1/messages', body: messagesBody },
  { name: 'responses', path: '/v1/responses', body: responsesBody },
] as const;
