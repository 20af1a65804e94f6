// Portcullis web UI: helpers shared by profile.js and admin.js.
//
// Rules this file exists to enforce:
//   * Every piece of API data reaches the page through textContent (see el()),
//     never parsed as HTML: usernames, roles and audit targets are chosen by
//     users, some of them by unauthenticated ones (a failed login's username).
//   * Every request goes through api(), which sends the HttpOnly session cookie
//     (credentials: 'same-origin'), turns error answers into an Error carrying
//     the server's `detail`, and sends the browser to the login page on 401.
(function () {
  'use strict';

  // The server fills <body data-api="..." data-ui="..."> with its prefixes.
  // Read lazily (the body exists once the deferred scripts run) and without a
  // trailing slash, so that base + '/path/' never doubles a slash.
  function prefix(name) {
    var value = (document.body && document.body.dataset[name]) || '';
    return value.replace(/\/+$/, '');
  }
  function apiBase() { return prefix('api'); }
  function uiBase() { return prefix('ui'); }

  // Send the browser to the login page, coming back here afterwards.
  function redirectToLogin() {
    window.location.assign(uiBase() + '/login?next=' + encodeURIComponent(window.location.pathname));
  }

  // Call the accounts API. `path` is relative to the API prefix ('/me/').
  // Resolves to the parsed JSON answer, or null for an empty one (204).
  // Rejects with an Error whose message is the server's `detail`.
  async function api(method, path, body) {
    var options = {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Accept': 'application/json' }
    };
    if (body !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }

    var response;
    try {
      response = await fetch(apiBase() + path, options);
    } catch (networkError) {
      throw new Error('Could not reach the gateway. Check your connection and try again.');
    }

    var data = null;
    var type = response.headers.get('Content-Type') || '';
    if (response.status !== 204 && type.indexOf('json') !== -1) {
      try {
        data = await response.json();
      } catch (parseError) {
        data = null;
      }
    }

    if (response.status === 401) {
      // The session cookie is missing, expired or revoked (e.g. after a
      // password change elsewhere): sign in again.
      redirectToLogin();
      throw new Error((data && data.detail) || 'Your session has ended. Redirecting to sign in…');
    }
    if (!response.ok) {
      var detail = data && typeof data.detail === 'string' ? data.detail : '';
      throw new Error(detail || ('Request failed (HTTP ' + response.status + ').'));
    }
    return data;
  }

  // Build an element safely: text goes through textContent, attributes through
  // setAttribute, children are appended. Never parses HTML.
  //   el('td', {class: 'roles'}, 'billing, reports:read')
  //   el('tr', {'data-user-id': 2}, [cell1, cell2])
  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === false || value === null || value === undefined) return;
      node.setAttribute(name, value === true ? '' : String(value));
    });
    [].concat(children === undefined ? [] : children).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    });
    return node;
  }

  // Set an element's text (safe for any string).
  function setText(idOrNode, text) {
    var node = typeof idOrNode === 'string' ? document.getElementById(idOrNode) : idOrNode;
    if (node) node.textContent = text === null || text === undefined ? '' : String(text);
  }

  // Show a status line: `kind` is 'error', 'success' or '' (neutral).
  function showMessage(idOrNode, text, kind) {
    var node = typeof idOrNode === 'string' ? document.getElementById(idOrNode) : idOrNode;
    if (!node) return;
    node.textContent = text || '';
    node.classList.toggle('error', kind === 'error');
    node.classList.toggle('success', kind === 'success');
  }
  function showError(idOrNode, error) {
    showMessage(idOrNode, error && error.message ? error.message : String(error), 'error');
  }

  // An RFC 3339 timestamp as a <time> element in the reader's locale, with the
  // exact UTC value as its datetime and tooltip. `empty` is shown for null.
  function timeNode(value, empty) {
    if (!value) return document.createTextNode(empty === undefined ? '—' : empty);
    var date = new Date(value);
    var text = isNaN(date.getTime()) ? String(value) : date.toLocaleString();
    return el('time', { datetime: value, title: value }, text);
  }
  function formatTime(value, empty) {
    if (!value) return empty === undefined ? '—' : empty;
    var date = new Date(value);
    return isNaN(date.getTime()) ? String(value) : date.toLocaleString();
  }

  // Run `task` with the given buttons (or form controls) disabled, so a
  // request cannot be sent twice while one is in flight.
  async function withBusy(controls, task) {
    var list = [].concat(controls).filter(Boolean);
    list.forEach(function (control) {
      control.disabled = true;
      control.setAttribute('aria-busy', 'true');
    });
    try {
      return await task();
    } finally {
      list.forEach(function (control) {
        control.disabled = false;
        control.removeAttribute('aria-busy');
      });
    }
  }

  // Copy the text of `codeNode` to the clipboard. The Clipboard API needs a
  // secure context and permission; when it is missing or refused, select the
  // text instead so the user can press Ctrl+C / Cmd+C.
  async function copySecret(codeNode, messageTarget) {
    var text = codeNode.textContent;
    try {
      if (!navigator.clipboard || !navigator.clipboard.writeText) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text);
      showMessage(messageTarget, 'Key copied to the clipboard.', 'success');
    } catch (error) {
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.selectAllChildren(codeNode);
      showMessage(messageTarget, 'Could not copy automatically: the key is selected, press Ctrl+C (Cmd+C) to copy it.', '');
    }
  }

  // 'billing, reports:read ,' -> ['billing', 'reports:read']. Validation of
  // the names themselves is left to the server, which names the problem.
  function parseRoles(text) {
    return String(text || '').split(',')
      .map(function (role) { return role.trim(); })
      .filter(function (role) { return role.length > 0; });
  }

  function yesNo(value) { return value ? 'yes' : 'no'; }

  window.Portcullis = {
    apiBase: apiBase,
    uiBase: uiBase,
    api: api,
    el: el,
    setText: setText,
    showMessage: showMessage,
    showError: showError,
    timeNode: timeNode,
    formatTime: formatTime,
    withBusy: withBusy,
    copySecret: copySecret,
    parseRoles: parseRoles,
    yesNo: yesNo
  };
})();
