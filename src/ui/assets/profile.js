// Portcullis web UI: the signed-in user's own page (GET {ui}/).
// Who I am, my API key (generate / revoke, secret shown once), change password.
(function () {
  'use strict';

  var P = window.Portcullis;
  var me = null;         // GET /me/ answer
  var activeKey = null;  // the caller's active key as listed (never the secret)

  function byId(id) { return document.getElementById(id); }

  // ---- Who I am -----------------------------------------------------------

  async function loadMe() {
    me = await P.api('GET', '/me/');
    P.setText('me-username', me.username);
    P.setText('me-roles', me.roles && me.roles.length ? me.roles.join(', ') : 'none');
    P.setText('me-admin', P.yesNo(me.is_admin));
    byId('admin-link').hidden = !me.is_admin;
  }

  // ---- My API key ---------------------------------------------------------

  async function loadKey() {
    var keys = await P.api('GET', '/api-keys/');
    // An administrator's listing holds every user's keys: keep only ours.
    // The list is newest first, and a user has at most one active key.
    activeKey = (keys || []).filter(function (key) {
      return key.user === me.id && key.revoked_at === null;
    })[0] || null;
    renderKey();
  }

  function renderKey() {
    var has = activeKey !== null;
    byId('no-key').hidden = has;
    byId('key-details').hidden = !has;
    byId('revoke-key').hidden = !has;
    P.setText('generate-key', has ? 'Replace API key' : 'Generate API key');
    if (has) {
      P.setText('key-prefix', activeKey.prefix);
      P.setText('key-created', P.formatTime(activeKey.created_at));
      P.setText('key-last-used', P.formatTime(activeKey.last_used_at, 'never'));
    }
  }

  // The secret is only ever in this box; hide and forget it once it is stale.
  function hideNewKey() {
    P.setText('new-key', '');
    byId('new-key-box').hidden = true;
  }

  async function generateKey() {
    if (activeKey && !window.confirm(
      'Generating a new API key revokes your current key (' + activeKey.prefix +
      ') at once. Scripts using it will stop working. Continue?')) {
      return;
    }
    P.showMessage('key-message', '');
    await P.withBusy([byId('generate-key'), byId('revoke-key')], async function () {
      try {
        var created = await P.api('POST', '/api-keys/', {});
        P.setText('new-key', created.key);
        byId('new-key-box').hidden = false;
        // Keep the listing fields only: the secret stays in the DOM box alone.
        activeKey = {
          id: created.id, user: created.user, prefix: created.prefix,
          created_at: created.created_at, last_used_at: created.last_used_at,
          revoked_at: created.revoked_at
        };
        renderKey();
        P.showMessage('key-message', 'New API key created.', 'success');
      } catch (error) {
        P.showError('key-message', error);
      }
    });
  }

  async function revokeKey() {
    if (!activeKey) return;
    if (!window.confirm('Revoke your API key ' + activeKey.prefix +
      '? Scripts using it will stop working at once.')) {
      return;
    }
    P.showMessage('key-message', '');
    await P.withBusy([byId('generate-key'), byId('revoke-key')], async function () {
      try {
        await P.api('DELETE', '/api-keys/' + encodeURIComponent(activeKey.id) + '/');
        hideNewKey();
        await loadKey();
        P.showMessage('key-message', 'API key revoked.', 'success');
      } catch (error) {
        P.showError('key-message', error);
      }
    });
  }

  // ---- Change password ----------------------------------------------------

  async function changePassword(event) {
    event.preventDefault();
    var current = byId('current-password');
    var fresh = byId('new-password');
    var confirmation = byId('confirm-password');
    P.showMessage('password-message', '');

    if (fresh.value !== confirmation.value) {
      P.showMessage('password-message', 'The new password and its confirmation do not match.', 'error');
      confirmation.focus();
      return;
    }

    await P.withBusy([byId('password-submit')], async function () {
      try {
        var answer = await P.api('POST', '/me/password/', {
          current_password: current.value,
          new_password: fresh.value
        });
        byId('password-form').reset();
        P.showMessage('password-message', (answer && answer.detail) || 'Password changed.', 'success');
      } catch (error) {
        P.showError('password-message', error);
        return;
      }
      // The change revoked the API key: show the new state.
      hideNewKey();
      try {
        await loadKey();
      } catch (error) {
        P.showError('key-message', error);
      }
    });
  }

  // ---- Wiring -------------------------------------------------------------

  async function init() {
    byId('generate-key').addEventListener('click', generateKey);
    byId('revoke-key').addEventListener('click', revokeKey);
    byId('copy-key').addEventListener('click', function () {
      P.copySecret(byId('new-key'), 'key-message');
    });
    byId('password-form').addEventListener('submit', changePassword);

    try {
      await loadMe();
    } catch (error) {
      P.showError('profile-message', error);
      return; // without /me/ we cannot tell which key is ours
    }
    try {
      await loadKey();
    } catch (error) {
      P.showError('key-message', error);
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
