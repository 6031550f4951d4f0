/* ari_app click-to-call widget: a number field, a button and a live status line.
 *
 * No dependencies, no build step, no cookies. Embed it with
 *
 *   <div data-ari-click-to-call data-site-key="KEY" data-queue="sales"></div>
 *   <script src="https://APP/api/v1/click-to-call/widget.js" async></script>
 *
 * or, when the site's backend signs tokens, data-token="..." instead of data-site-key
 * (data-agent="ID" targets one agent). Containers present when the script runs are mounted;
 * AriClickToCall.mount(element, options) mounts others. Every status change is also dispatched
 * on the container as a "ari-click-to-call:status" event ({status, reason} in detail) and kept
 * in its data-status attribute.
 */
(function () {
  "use strict";

  var LABELS = {
    sending: "Sending your request\u2026",
    queued: "Waiting for an agent\u2026",
    "agent-ringing": "Calling an agent\u2026",
    "agent-answered": "An agent answered, calling you now\u2026",
    "customer-ringing": "Your phone is ringing\u2026",
    connected: "Connected: you are talking with an agent.",
    completed: "Call completed. Thank you!",
    failed: "The call could not be completed",
    refused: "Request refused",
    error: "Network error, please try again."
  };
  var REASONS = {
    "customer-noanswer": "you did not answer",
    "customer-busy": "your line was busy",
    "customer-hangup": "you hung up",
    "queue-timeout": "no agent was free in time"
  };

  var script = document.currentScript;
  var defaultEndpoint = script && script.src
    ? script.src.replace(/\/widget\.js(\?.*)?$/, "")
    : "/api/v1/click-to-call";

  function label(status, reason) {
    var text = LABELS[status] || status;
    if (status === "failed") {
      text += " (" + (REASONS[reason] || reason || "unknown reason") + ").";
    }
    return text;
  }

  function make(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function mount(root, options) {
    var opts = options || {};
    var attr = function (name) { return root.getAttribute("data-" + name); };
    var endpoint = opts.endpoint || attr("endpoint") || defaultEndpoint;
    var siteKey = opts.siteKey || attr("site-key");
    var token = opts.token || attr("token");
    var queue = opts.queue || attr("queue");
    var agent = opts.agent || attr("agent");

    var form = make("form", { "class": "acc-form", novalidate: "" });
    var field = make("label", { "class": "acc-label" }, "Your phone number ");
    var input = make("input", { type: "tel", name: "number", autocomplete: "tel", maxlength: "32",
                                required: "", placeholder: "06 12 34 56 78", "class": "acc-number" });
    var button = make("button", { type: "submit", "class": "acc-call" }, "Call me");
    var status = make("p", { "class": "acc-status", role: "status", "aria-live": "polite" });
    field.appendChild(input);
    form.appendChild(field);
    form.appendChild(button);
    root.appendChild(form);
    root.appendChild(status);

    function show(state, reason, text) {
      status.setAttribute("data-status", state);
      root.setAttribute("data-status", state);
      status.textContent = text || label(state, reason);
      var detail = { status: state, reason: reason || null };
      var event;
      try {
        event = new CustomEvent("ari-click-to-call:status", { detail: detail });
      } catch (e) {
        event = document.createEvent("CustomEvent");
        event.initCustomEvent("ari-click-to-call:status", false, false, detail);
      }
      root.dispatchEvent(event);
    }

    function follow(data) {
      show(data.status || "queued", data.reason);
      if (data.done) { button.disabled = false; return; }
      var base = new URL(endpoint, window.location.href).href;
      var source = new EventSource(new URL(data.events_url, base).href);
      source.onmessage = function (message) {
        var s = JSON.parse(message.data);
        show(s.status, s.reason);
        if (s.done) { source.close(); button.disabled = false; }
      };
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!input.value.trim()) { show("refused", "number", "Please type your phone number."); return; }
      button.disabled = true;
      show("sending");
      var body = { number: input.value, context: { page: String(window.location.href).slice(0, 500) } };
      if (token) { body.token = token; } else { body.site_key = siteKey; }
      if (queue) { body.queue = queue; }
      if (agent) { body.agent = agent; }
      fetch(endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit"
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.status === 202) { follow(data); return; }
          var error = (data && data.error) || {};
          var retry = response.headers.get("Retry-After");
          var text = response.status === 429
            ? "Too many requests, please try again in " + (retry || "a few") + " seconds."
            : (error.message || LABELS.refused);
          show("refused", error.code, text);
          button.disabled = false;
        });
      }).catch(function () {
        show("error");
        button.disabled = false;
      });
    });
    return { root: root, input: input, button: button, status: status };
  }

  function mountAll() {
    var nodes = document.querySelectorAll("[data-ari-click-to-call]");
    Array.prototype.forEach.call(nodes, function (node) {
      if (!node.getAttribute("data-acc-mounted")) {
        node.setAttribute("data-acc-mounted", "1");
        mount(node);
      }
    });
  }

  window.AriClickToCall = { mount: mount, label: label };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mountAll);
  } else {
    mountAll();
  }
})();
