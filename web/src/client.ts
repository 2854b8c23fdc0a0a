// The one GraphQL client: queries and mutations over HTTP, subscriptions over the hub's
// WebSocket (graphql-ws protocol). Both carry the session cookie, so no token lives in JS.
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from 'urql';
import { createClient as createWsClient } from 'graphql-ws';

/** The hub's WebSocket endpoint for this page's origin. */
export function wsUrl(loc: Location = window.location): string {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}/graphql/ws`;
}

export function makeClient(): Client {
  const ws = createWsClient({
    url: wsUrl(),
    lazy: true,
    retryAttempts: 5,
    keepAlive: 15_000,
  });
  return new Client({
    url: '/graphql',
    fetchOptions: { credentials: 'same-origin' },
    // The hub takes GraphQL over POST only (GET /graphql is GraphiQL).
    preferGetMethod: false,
    requestPolicy: 'cache-and-network',
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
}
