/**
 * Types for the two undici modules the registry transport loads directly (see http.ts): the
 * package index also loads fetch, WebSocket, the cache, mocks and HTTP/2, which cost a pull about
 * 0.19 CPU s and 8 MB before its first request.
 */
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici';
  export default Agent;
}

declare module 'undici/lib/api/index.js' {
  import type { Dispatcher } from 'undici';
  const api: {
    /** Dispatcher.request, called with the dispatcher as `this` (undici's index mixes it into Dispatcher.prototype). */
    request(this: Dispatcher, opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  };
  export default api;
}
