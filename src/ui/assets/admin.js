// Portcullis web UI: the administration page (GET {ui}/admin).
// Users (create, roles, activate/deactivate, reset password), every API key
// (revoke, generate for a user, secret shown once) and recent audit events.
(function () {
  'use strict';

  var P = window.Portcullis;
  var MESSAGE = 'admin-message';
  var usersById = {};   // id -> user, from the last GET /users/
  var shownKeyId = null; // id of the key whose secret is in #admin-new-key-box

  function byId(id) { return document.getElementById(id); }

  // Replace a table's body with `rows`, or one "nothing here" row.
  function fillTable(tableId, rows, emptyText) {
    var table = byId(tableId);
    var columns = table.tHead.rows[0].cells.length;
    var empty = P.el('tr', { class: 'empty' }, P.el('td', { colspan: columns }, emptyText));
    table.tBodies[0].replaceChildren.apply(table.tBodies[0], rows.length ? rows : [empty]);
  }

  function button(className, label) {
    return P.el('button', { type: 'button', class: className }, label);
  }

  function usernameOf(id) {
    // A key may outlive its user (deleted users' keys stay listed, revoked).
    return usersById[id] ? usersById[id].username : 'user #' + id;
  }

  // ---- Loading and rendering ----------------------------------------------

  async function loadUsers() {
    var users = await P.api('GET', '/users/');
    usersById = {};
    users.forEach(function (user) { usersById[user.id] = user; });

    var rows = users.map(function (user) {
      return P.el('tr', { 'data-user-id': user.id, class: user.is_active ? null : 'inactive' }, [
        P.el('td', { class: 'username' }, user.username),
        P.el('td', { class: 'roles' }, user.roles.length ? user.roles.join(', ') : '—'),
        P.el('td', { class: 'is-admin' }, P.yesNo(user.is_admin)),
        P.el('td', { class: 'is-active' }, P.yesNo(user.is_active)),
        P.el('td', { class: 'actions' }, [
          button('set-roles small', 'Set roles'),
          button('toggle-active small' + (user.is_active ? ' danger' : ''),
            user.is_active ? 'Deactivate' : 'Activate'),
          button('reset-password small', 'Reset password')
        ])
      ]);
    });
    fillTable('users', rows, 'No users.');

    // Keys can only be made for active users; keep the current choice if any.
    var select = byId('key-user');
    var previous = select.value;
    var options = users.filter(function (user) { return user.is_active; }).map(function (user) {
      return P.el('option', { value: user.id }, user.username);
    });
    select.replaceChildren.apply(select, options);
    if (previous && usersById[previous] && usersById[previous].is_active) select.value = previous;
    byId('generate-for-user-submit').disabled = options.length === 0;
  }

  async function loadKeys() {
    var keys = await P.api('GET', '/api-keys/');
    var rows = keys.map(function (key) {
      var active = key.revoked_at === null;
      return P.el('tr', { 'data-key-id': key.id, class: active ? null : 'revoked-row' }, [
        P.el('td', { class: 'prefix' }, P.el('code', {}, key.prefix)),
        P.el('td', { class: 'user' }, usernameOf(key.user)),
        P.el('td', { class: 'created' }, P.timeNode(key.created_at)),
        P.el('td', { class: 'last-used' }, P.timeNode(key.last_used_at, 'never')),
        P.el('td', { class: 'revoked' }, P.timeNode(key.revoked_at, '—')),
        P.el('td', { class: 'actions' }, active ? button('revoke small danger', 'Revoke') : null)
      ]);
    });
    fillTable('keys', rows, 'No API keys.');

    // A secret on screen for a key that is no longer active is useless.
    if (shownKeyId !== null) {
      var stillActive = keys.some(function (key) {
        return key.id === shownKeyId && key.revoked_at === null;
      });
      if (!stillActive) hideNewKey();
    }
  }

  async function loadAudit() {
    var page = await P.api('GET', '/audit/?limit=50');
    var rows = page.results.map(function (event) {
      return P.el('tr', { 'data-event-id': event.id }, [
        P.el('td', { class: 'at' }, P.timeNode(event.at)),
        P.el('td', { class: 'kind' }, event.kind),
        P.el('td', { class: 'actor' }, event.actor === null ? '—' : event.actor),
        P.el('td', { class: 'target' }, event.target === null ? '—' : event.target),
        P.el('td', { class: 'client-ip' }, event.client_ip === null ? '—' : event.client_ip)
      ]);
    });
    fillTable('audit', rows, 'No events.');
  }

  // Reload everything after a change: a change to a user can revoke their key,
  // and every change adds an audit event. Keys need the users (for names).
  // Only errors touch the status line, so a success message stays visible.
  async function refresh() {
    try {
      await loadUsers();
      await Promise.all([loadKeys(), loadAudit()]);
    } catch (error) {
      P.showError(MESSAGE, error);
    }
  }

  function hideNewKey() {
    shownKeyId = null;
    P.setText('admin-new-key', '');
    byId('admin-new-key-box').hidden = true;
  }

  // ---- Users --------------------------------------------------------------

  // PATCH a user with `body`, buttons of its row disabled meanwhile.
  async function patchUser(user, body, controls, successText) {
    P.showMessage(MESSAGE, '');
    await P.withBusy(controls, async function () {
      try {
        await P.api('PATCH', '/users/' + encodeURIComponent(user.id) + '/', body);
        P.showMessage(MESSAGE, successText, 'success');
      } catch (error) {
        P.showError(MESSAGE, error);
        return;
      }
      await refresh();
    });
  }

  function onUsersClick(event) {
    var target = event.target.closest('button');
    var row = target && target.closest('tr[data-user-id]');
    if (!row) return;
    var user = usersById[row.dataset.userId];
    if (!user) return;
    var controls = Array.prototype.slice.call(row.querySelectorAll('button'));

    if (target.classList.contains('set-roles')) {
      var input = window.prompt('Roles for ' + user.username +
        ' (comma-separated; leave empty for none):', user.roles.join(', '));
      if (input === null) return;
      patchUser(user, { roles: P.parseRoles(input) }, controls,
        'Roles of ' + user.username + ' updated.');
    } else if (target.classList.contains('toggle-active')) {
      var activate = !user.is_active;
      patchUser(user, { is_active: activate }, controls, activate
        ? user.username + ' activated. Their old API key stays revoked.'
        : user.username + ' deactivated: their sessions and API key are revoked.');
    } else if (target.classList.contains('reset-password')) {
      var password = window.prompt('New password for ' + user.username +
        ' (at least 8 characters). This signs them out everywhere and revokes their API key.');
      if (password === null || password === '') return;
      patchUser(user, { password: password }, controls,
        'Password of ' + user.username + ' reset: their sessions and API key are revoked.');
    }
  }

  async function createUser(event) {
    event.preventDefault();
    var form = byId('create-user-form');
    var body = {
      username: byId('new-username').value.trim(),
      password: byId('new-user-password').value,
      roles: P.parseRoles(byId('new-user-roles').value),
      is_admin: byId('new-user-admin').checked
    };
    P.showMessage(MESSAGE, '');
    await P.withBusy([byId('create-user-submit')], async function () {
      try {
        var user = await P.api('POST', '/users/', body);
        form.reset();
        P.showMessage(MESSAGE, 'User ' + user.username + ' created.', 'success');
      } catch (error) {
        P.showError(MESSAGE, error);
        return;
      }
      await refresh();
    });
  }

  // ---- API keys -----------------------------------------------------------

  async function onKeysClick(event) {
    var target = event.target.closest('button.revoke');
    var row = target && target.closest('tr[data-key-id]');
    if (!row) return;
    var id = row.dataset.keyId;
    var prefix = row.querySelector('.prefix').textContent;
    P.showMessage(MESSAGE, '');
    await P.withBusy([target], async function () {
      try {
        await P.api('DELETE', '/api-keys/' + encodeURIComponent(id) + '/');
        P.showMessage(MESSAGE, 'API key ' + prefix + ' revoked.', 'success');
      } catch (error) {
        P.showError(MESSAGE, error);
        return;
      }
      await refresh();
    });
  }

  async function generateForUser(event) {
    event.preventDefault();
    var select = byId('key-user');
    if (!select.value) {
      P.showMessage(MESSAGE, 'Choose a user first.', 'error');
      return;
    }
    var userId = Number(select.value);
    P.showMessage(MESSAGE, '');
    await P.withBusy([byId('generate-for-user-submit'), select], async function () {
      try {
        var created = await P.api('POST', '/api-keys/', { user: userId });
        shownKeyId = created.id;
        P.setText('admin-new-key', created.key);
        byId('admin-new-key-box').hidden = false;
        P.showMessage(MESSAGE, 'API key created for ' + usernameOf(created.user) + '.', 'success');
      } catch (error) {
        P.showError(MESSAGE, error);
        return;
      }
      await refresh();
    });
  }

  // ---- Wiring -------------------------------------------------------------

  function init() {
    byId('users').addEventListener('click', onUsersClick);
    byId('keys').addEventListener('click', onKeysClick);
    byId('create-user-form').addEventListener('submit', createUser);
    byId('generate-for-user').addEventListener('submit', generateForUser);
    byId('admin-copy-key').addEventListener('click', function () {
      P.copySecret(byId('admin-new-key'), MESSAGE);
    });
    refresh();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
