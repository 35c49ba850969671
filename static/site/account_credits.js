// The customer's balance page, built on the same endpoints a separate frontend calls:
// GET /api/credits/balance/ and GET /api/credits/transactions/ with the session cookie, and
// POST with the CSRF token in the X-CSRFToken header. Text from the API is only ever set
// through textContent, never parsed as HTML.
(function () {
  "use strict";
  var root = document.getElementById("credits");
  if (!root) return;

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function api(url, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    if (options.body) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = cookie("csrftoken");
    }
    return fetch(url, {
      method: options.method || "GET",
      credentials: "same-origin",
      headers: headers,
      body: options.body ? JSON.stringify(options.body) : undefined,
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          var message = data && data.error ? data.error.message : response.statusText;
          throw new Error(message);
        }
        return data;
      });
    });
  }

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  function showError(error) {
    var node = document.getElementById("load-error");
    node.textContent = "Could not load your credits: " + error.message;
    node.hidden = false;
  }

  // A date as the customer reads it (their locale), keeping the exact instant in the
  // element's datetime attribute.
  function showDate(id, iso) {
    var node = document.getElementById(id);
    node.textContent = new Date(iso).toLocaleDateString(undefined, {
      year: "numeric",
      month: "long",
      day: "numeric",
    });
    node.setAttribute("datetime", iso);
  }

  function loadBalance() {
    return api(root.dataset.balanceUrl).then(function (data) {
      text("balance", data.balance);
      text("plan", data.plan);
      text("available", data.available);
      document.getElementById("available-row").hidden = false;
      // Held credits are shown only while a hold reserves some.
      var held = Number(data.held) > 0;
      if (held) text("held", data.held);
      document.getElementById("held-row").hidden = !held;
      var expiring = data.expiring;
      if (expiring) {
        text("expiring-amount", expiring.amount);
        showDate("expiring-date", expiring.expires_at);
      }
      document.getElementById("expiring-section").hidden = !expiring;
    });
  }

  var body = document.querySelector("#history tbody");
  var more = document.getElementById("more");
  var nextUrl = null;

  function cell(row, value, className) {
    var td = document.createElement("td");
    td.textContent = value;
    if (className) td.className = className;
    row.appendChild(td);
  }

  function loadHistory(url) {
    return api(url).then(function (page) {
      page.results.forEach(function (entry) {
        var row = document.createElement("tr");
        cell(row, new Date(entry.created_at).toLocaleString());
        cell(row, entry.description || entry.kind);
        cell(row, entry.amount, "num");
        cell(row, entry.balance_after, "num");
        body.appendChild(row);
      });
      document.getElementById("history-empty").hidden = body.children.length > 0;
      nextUrl = page.next;
      more.hidden = !nextUrl;
    });
  }

  more.addEventListener("click", function () {
    if (nextUrl) loadHistory(nextUrl).catch(showError);
  });

  var checkoutKeys = {};
  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  var buy = document.getElementById("buy");
  if (buy) {
    buy.addEventListener("submit", function (event) {
      event.preventDefault();
      var pack = buy.elements.pack ? buy.elements.pack.value : undefined;
      // One key per pack for this page: a second click asks Stripe for the same session.
      if (!checkoutKeys[pack]) checkoutKeys[pack] = "page-" + newKey();
      api(buy.dataset.checkoutUrl, {
        method: "POST",
        body: { pack: pack, idempotency_key: checkoutKeys[pack] },
      })
        .then(function (data) {
          var target = data.url || data.checkout_url;
          if (target) window.location.assign(target);
        })
        .catch(showError);
    });
  }

  Promise.all([loadBalance(), loadHistory(root.dataset.transactionsUrl)]).catch(showError);
})();
