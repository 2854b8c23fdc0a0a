// Starts GraphiQL on the hub's /graphql page (server/src/graphiql.html). A file rather than an
// inline script, so the page runs under `script-src 'self'`. The session cookie goes along with
// every request (same origin); subscriptions use the graphql-ws WebSocket.
(function () {
  var http = new URL('/graphql', window.location.origin);
  var ws = new URL('/graphql/ws', window.location.origin);
  ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: http.toString(),
    subscriptionUrl: ws.toString(),
    fetch: function (url, opts) {
      return fetch(url, Object.assign({}, opts, { credentials: 'same-origin' }));
    },
  });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true }),
  );
})();
