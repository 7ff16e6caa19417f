/*
 * Agensium GraphQL playground bootstrap.
 *
 * Loaded as an external script (the page is served with a strict CSP that
 * forbids inline scripts). Expects these globals from the vendored UMD
 * bundles loaded before it: React, ReactDOM, graphqlWs, GraphiQL.
 *
 * Authentication: type an `Authorization` header into GraphiQL's "Headers"
 * editor, e.g. {"Authorization": "Bearer <accessToken>"}. GraphiQL sends the
 * headers of the active tab with every HTTP request; this script additionally
 * reuses the same token for the WebSocket (graphql-transport-ws)
 * `connection_init` payload used by subscriptions, re-creating the WebSocket
 * client whenever the token changes.
 */
(function () {
  'use strict';

  var container = document.getElementById('graphiql');

  function fail(message) {
    if (window.console && console.error) console.error('[playground] ' + message);
    if (container) {
      var box = document.createElement('div');
      box.className = 'playground-loading';
      box.textContent = message;
      container.replaceChildren(box);
    }
  }

  if (!container) return;
  if (!window.React || !window.ReactDOM || !window.GraphiQL || !window.graphqlWs) {
    fail('Failed to load the playground assets (React, ReactDOM, graphql-ws or GraphiQL is missing).');
    return;
  }

  var httpUrl = location.origin + '/graphql';
  var wsUrl = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/graphql';

  // RFC 6750 "b64token": what a real access token looks like. Anything else
  // (e.g. the "<accessToken from SignIn>" placeholder) is treated as "no token".
  var TOKEN_RE = /^[A-Za-z0-9\-._~+\/]+=*$/;

  /**
   * Splits the Headers-editor object into { token, headers }: `token` is the
   * bearer token ('' if absent/placeholder) and `headers` is the object to send
   * over HTTP (a placeholder Authorization header is dropped so that e.g.
   * signIn is not sent with a bogus token).
   */
  function splitAuth(headers) {
    var result = { token: '', headers: headers };
    if (!headers || typeof headers !== 'object') return result;
    for (var key in headers) {
      if (!Object.prototype.hasOwnProperty.call(headers, key) || key.toLowerCase() !== 'authorization') continue;
      var value = headers[key];
      var token = typeof value === 'string' ? value.replace(/^\s*bearer\s+/i, '').trim() : '';
      if (token && TOKEN_RE.test(token)) {
        result.token = token;
      } else {
        var copy = {};
        for (var k in headers) {
          if (Object.prototype.hasOwnProperty.call(headers, k) && k !== key) copy[k] = headers[k];
        }
        result.headers = copy;
      }
      break;
    }
    return result;
  }

  var currentToken = null; // token the current ws client / fetcher was built with
  var wsClient = null;
  var innerFetcher = null;

  function buildFetcher(token) {
    if (wsClient) {
      try {
        wsClient.dispose();
      } catch (e) {
        /* ignore */
      }
    }
    wsClient = graphqlWs.createClient({
      url: wsUrl,
      lazy: true,
      connectionParams: function () {
        return token ? { Authorization: 'Bearer ' + token } : {};
      },
    });
    // GraphiQL's HTTP fetcher merges the Headers-editor headers (2nd fetcher
    // argument, `fetcherOpts.headers`) into every request itself.
    innerFetcher = GraphiQL.createFetcher({
      url: httpUrl,
      wsClient: wsClient,
      headers: {},
    });
    currentToken = token;
  }

  function fetcher(graphQLParams, fetcherOpts) {
    var auth = splitAuth(fetcherOpts && fetcherOpts.headers);
    if (innerFetcher === null || auth.token !== currentToken) buildFetcher(auth.token);
    var opts = fetcherOpts;
    if (fetcherOpts && auth.headers !== fetcherOpts.headers) {
      opts = {};
      for (var k in fetcherOpts) {
        if (Object.prototype.hasOwnProperty.call(fetcherOpts, k)) opts[k] = fetcherOpts[k];
      }
      opts.headers = auth.headers;
    }
    return innerFetcher(graphQLParams, opts);
  }

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  var exampleCredentials = { email: 'analyst@example.com', password: 'correct horse battery' };

  // Tab `variables` / `headers` must be strings (GraphiQL stores them verbatim).
  // `headers: ''` keeps GraphiQL from filling those tabs with `defaultHeaders`
  // (which is only meant as a hint for tabs the user adds).
  var defaultTabs = [
    {
      query:
        '# 1. Create an account. Run it (Ctrl/Cmd+Enter), then copy "accessToken" and\n' +
        '#    "refreshToken" from the response for the other tabs.\n' +
        'mutation SignUp($email: String!, $password: String!) {\n' +
        '  signUp(email: $email, password: $password) {\n' +
        '    accessToken\n' +
        '    refreshToken\n' +
        '    expiresIn\n' +
        '    user {\n' +
        '      id\n' +
        '      email\n' +
        '      role\n' +
        '      createdAt\n' +
        '    }\n' +
        '  }\n' +
        '}\n',
      variables: json(exampleCredentials),
      headers: '',
    },
    {
      query:
        '# 2. Sign in with an existing account. Copy "accessToken" into the Authorization\n' +
        '#    header (Headers tab) of other operations, and keep "refreshToken" for Refresh/SignOut.\n' +
        'mutation SignIn($email: String!, $password: String!) {\n' +
        '  signIn(email: $email, password: $password) {\n' +
        '    accessToken\n' +
        '    refreshToken\n' +
        '    expiresIn\n' +
        '    user {\n' +
        '      id\n' +
        '      email\n' +
        '      role\n' +
        '    }\n' +
        '  }\n' +
        '}\n',
      variables: json(exampleCredentials),
      headers: '',
    },
    {
      query:
        '# 3. Who am I? Replace the placeholder in the Headers tab below with the accessToken\n' +
        '#    returned by SignIn/SignUp (keep the "Bearer " prefix). Subscriptions reuse it too.\n' +
        'query Me {\n' +
        '  me {\n' +
        '    id\n' +
        '    email\n' +
        '    role\n' +
        '    createdAt\n' +
        '  }\n' +
        '}\n',
      headers: json({ Authorization: 'Bearer <accessToken from SignIn>' }),
    },
    {
      query:
        '# 4. Exchange a refresh token for a new token pair. Paste the refreshToken from\n' +
        '#    SignIn into the variables below; the old refresh token is rotated out.\n' +
        'mutation Refresh($refreshToken: String!) {\n' +
        '  refreshSession(refreshToken: $refreshToken) {\n' +
        '    accessToken\n' +
        '    refreshToken\n' +
        '    expiresIn\n' +
        '  }\n' +
        '}\n',
      variables: json({ refreshToken: '<refreshToken from SignIn>' }),
      headers: '',
    },
    {
      query:
        '# 5. Sign out: revokes the given refresh token. Paste the latest refreshToken\n' +
        '#    (from SignIn or Refresh) into the variables below.\n' +
        'mutation SignOut($refreshToken: String!) {\n' +
        '  signOut(refreshToken: $refreshToken)\n' +
        '}\n',
      variables: json({ refreshToken: '<refreshToken from SignIn>' }),
      headers: '',
    },
    {
      query:
        '# 6. Profile a dataset (upload one first with a multipart client, see README).\n' +
        '#    Paste a dataset id below (and an earlier version as baseline for drift, or\n' +
        '#    remove baselineDatasetId); the job id comes back for tabs 7 and 8.\n' +
        'mutation Profile($datasetId: ID!, $baselineDatasetId: ID, $parameters: JSON) {\n' +
        '  runTool(input: { toolId: "profile-my-data", datasetId: $datasetId,\n' +
        '                   baselineDatasetId: $baselineDatasetId, parameters: $parameters }) {\n' +
        '    agents\n' +
        '    id\n' +
        '    status\n' +
        '    queuePosition\n' +
        '  }\n' +
        '}\n',
      variables: json({
        datasetId: '<dataset id>',
        baselineDatasetId: null,
        parameters: {
          'unified-profiler': { top_n_values: 5 },
          'test-coverage-agent': { suggest_tests: true, max_failing_rows: 20 },
        },
      }),
      headers: json({ Authorization: 'Bearer <accessToken from SignIn>' }),
    },
    {
      query:
        '# 7. Follow a job live (over WebSocket): a snapshot on every change until it ends.\n' +
        'subscription Progress($jobId: ID!) {\n' +
        '  jobProgress(jobId: $jobId) {\n' +
        '    status\n' +
        '    progress\n' +
        '    stage\n' +
        '  }\n' +
        '}\n',
      variables: json({ jobId: '<job id from Profile>' }),
      headers: json({ Authorization: 'Bearer <accessToken from SignIn>' }),
    },
    {
      query:
        '# 8. Read the report of a finished job.\n' +
        'query Report($jobId: ID!) {\n' +
        '  job(id: $jobId) {\n' +
        '    status\n' +
        '    error { code message }\n' +
        '    report {\n' +
        '      profile {\n' +
        '        rowCount\n' +
        '        duplicateRowCount\n' +
        '        qualityScore\n' +
        '        grade\n' +
        '        columns {\n' +
        '          name\n' +
        '          semanticType\n' +
        '          nullCount\n' +
        '          distinctCount\n' +
        '          mean\n' +
        '          median\n' +
        '          topValues(limit: 5) { value count }\n' +
        '          histogram(bins: 10) { lower upper count }\n' +
        '        }\n' +
        '      }\n' +
        '      agents {\n' +
        '        agentId\n' +
        '        summaryMetrics\n' +
        '        alerts { code severity column message }\n' +
        '        recommendations { message }\n' +
        '        rowLevelIssues(first: 20) { row column code message }\n' +
        '      }\n' +
        '    }\n' +
        '    # JSON, Excel and HTML reports: open a url on this server within five minutes.\n' +
        '    downloads { name format url sizeBytes }\n' +
        '  }\n' +
        '}\n',
      variables: json({ jobId: '<job id from Profile>' }),
      headers: json({ Authorization: 'Bearer <accessToken from SignIn>' }),
    },
  ];

  // GraphiQL 3 fills the editors of the first visit from storage, not from defaultTabs[0]:
  // seed the first tab's variables so that "Sign up" runs as shown.
  try {
    if (window.localStorage && localStorage.getItem('graphiql:tabState') === null) {
      localStorage.setItem('graphiql:variables', defaultTabs[0].variables);
    }
  } catch (e) {
    /* storage unavailable: the tab still shows its query */
  }

  var props = {
    fetcher: fetcher,
    defaultTabs: defaultTabs,
    shouldPersistHeaders: true,
    isHeadersEditorEnabled: true,
    defaultEditorToolsVisibility: true,
  };

  try {
    var root = ReactDOM.createRoot(container);
    root.render(React.createElement(GraphiQL, props));
  } catch (err) {
    fail('Failed to start GraphiQL: ' + (err && err.message ? err.message : String(err)));
  }
})();
