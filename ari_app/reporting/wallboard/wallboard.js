// The wallboard: follows /api/v1/stats/stream (server-sent events) and redraws on every snapshot.
// The API token comes from the URL fragment (#token=...), else from this tab's storage, else a prompt.
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  let last = null;        // latest snapshot
  let skew = 0;           // local clock minus server clock, seconds
  let source = null;

  function token() {
    const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      const t = decodeURIComponent(m[1]);
      sessionStorage.setItem("ari_app_token", t);
      history.replaceState(null, "", location.pathname);   // keep the token out of screenshots and history
      return t;
    }
    let t = sessionStorage.getItem("ari_app_token");
    if (!t) {
      t = window.prompt("API token for the wallboard") || "";
      sessionStorage.setItem("ari_app_token", t);
    }
    return t;
  }

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");
  const secs = (v) => (v === null || v === undefined ? "–" : Math.round(v) + " s");
  function dur(s) {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(r).padStart(2, "0");
  }
  const now = () => Date.now() / 1000 - skew;

  function chart(series, target) {
    // SL (solid) and abandon rate (dashed) per interval since midnight, 0..100% on a 96-slot day.
    if (!series || !series.length) return '<svg class="chart" viewBox="0 0 96 20"></svg>';
    const day0 = last.today_since || series[0].t;
    const x = (t) => ((t - day0) / 900 + 0.5).toFixed(2);
    const y = (v) => (20 - 19 * v).toFixed(2);
    const path = (key) => series.filter((p) => p[key] !== null).map((p, i) => (i ? "L" : "M") + x(p.t) + " " + y(p[key])).join(" ");
    return '<svg class="chart" viewBox="0 0 96 20" preserveAspectRatio="none">' +
      '<line class="target" x1="0" x2="96" y1="' + y(target) + '" y2="' + y(target) + '"/>' +
      '<path class="sl" vector-effect="non-scaling-stroke" d="' + path("service_level") + '"/>' +
      '<path class="ab" vector-effect="non-scaling-stroke" d="' + path("abandon_rate") + '"/></svg>';
  }

  function queueCard(q) {
    const t = q.today, e = q.erlang;
    return '<div class="card queue" data-queue="' + esc(q.name) + '">' +
      "<h3>" + esc(q.name) + "</h3>" +
      '<div class="big">' +
      '<div><span class="value waiting' + (q.waiting ? " alert" : "") + '">' + q.waiting + '</span><span class="label">waiting</span></div>' +
      '<div><span class="value longest' + (q.longest_wait > q.sl_threshold ? " alert" : "") + '" data-since="' + (q.waiting ? last.at - q.longest_wait : "") + '">' + dur(q.longest_wait) + '</span><span class="label">longest wait</span></div>' +
      '<div><span class="value sl">' + pct(t.service_level) + '</span><span class="label">service level</span></div>' +
      "</div>" +
      '<div class="kv">' +
      "<div><span>available</span>" + q.agents.available + "</div>" +
      "<div><span>on call</span>" + (q.agents.on_call + q.agents.ringing) + "</div>" +
      "<div><span>wrap-up / paused</span>" + q.agents.wrapup + " / " + q.agents.paused + "</div>" +
      "<div><span>offered / answered</span>" + t.offered + " / " + t.answered + "</div>" +
      '<div><span>abandon rate</span><b class="abandon">' + pct(t.abandon_rate) + "</b></div>" +
      "<div><span>ASA / AHT</span>" + secs(t.asa) + " / " + secs(t.aht) + "</div>" +
      "<div><span>callbacks waiting</span>" + q.callbacks_waiting + "</div>" +
      "<div><span>occupancy</span>" + pct(q.occupancy) + "</div>" +
      "<div><span>predicted SL (" + (e ? e.agents : 0) + " agents)</span>" + (e ? pct(e.predicted_service_level) + " · need " + e.agents_needed : "–") + "</div>" +
      "</div>" + chart(q.series, e ? e.target_service_level : 0.8) +
      '<div class="legend">service level (solid) and abandon rate (dashed) per 15 minutes today</div></div>';
  }

  function agentCard(a) {
    const label = a.state.replace("_", " ") + (a.pause_reason ? " (" + a.pause_reason + ")" : "");
    return '<div class="agent ' + esc(a.state) + '" data-agent="' + esc(a.id) + '" data-state="' + esc(a.state) + '">' +
      '<div class="id">' + esc(a.id) + "</div>" +
      '<div class="state">' + esc(label) + ' · <span class="in-state" data-since="' + a.since + '">' + dur(a.in_state) + "</span></div>" +
      '<div class="muted">' + a.today.calls_handled + " calls · occ " + pct(a.today.occupancy) + "</div></div>";
  }

  function campaignCard(c) {
    return '<div class="card campaign" data-campaign="' + esc(c.id) + '">' +
      "<h3>" + esc(c.id) + ' <span class="muted">' + esc(c.mode || "") + " · " + esc(c.state) + "</span></h3>" +
      '<div class="big">' +
      '<div><span class="value">' + c.calls_in_flight + '</span><span class="label">calls in flight</span></div>' +
      '<div><span class="value">' + c.agents_ready + " / " + c.agents + '</span><span class="label">agents ready</span></div>' +
      '<div><span class="value abandon">' + pct(c.abandon_rate_now) + '</span><span class="label">abandon rate (rule window)</span></div>' +
      "</div>" +
      '<div class="kv"><div><span>on a call</span>' + c.agents_on_call + "</div>" +
      "<div><span>leads dialable</span>" + (c.dialable_leads == null ? "–" : c.dialable_leads) + "</div>" +
      "<div><span>abandons still affordable</span>" + c.affordable_abandons + "</div></div></div>";
  }

  function render(s) {
    last = s;
    skew = Date.now() / 1000 - s.at;
    $("#queues").innerHTML = s.queues.map(queueCard).join("") || '<p class="muted">no queues</p>';
    $("#agents").innerHTML = s.agents.map(agentCard).join("") || '<p class="muted">no agents</p>';
    const st = s.agent_states;
    $("#agent-summary").textContent = Object.keys(st).filter((k) => st[k]).map((k) => st[k] + " " + k.replace("_", " ")).join(" · ");
    $("#tz").textContent = s.timezone;
    const campaigns = s.campaigns || [];
    $("#campaigns").innerHTML = campaigns.map(campaignCard).join("");
    $("#campaigns-section").hidden = campaigns.length === 0;
    const ext = [];
    for (const key of Object.keys(s)) {
      if (["at", "queues", "agents", "agent_states", "today_since", "timezone", "campaigns"].includes(key)) continue;
      ext.push("<h2>" + esc(key) + "</h2><pre>" + esc(JSON.stringify(s[key], null, 1)) + "</pre>");
    }
    $("#extensions").innerHTML = ext.join("");
    document.body.dataset.updated = String(s.at);
  }

  function tick() {
    $("#clock").textContent = new Date().toLocaleTimeString();
    document.querySelectorAll("[data-since]").forEach((el) => {
      const since = parseFloat(el.dataset.since);
      if (!isNaN(since)) el.textContent = dur(now() - since);
    });
  }

  function setStatus(cls, text) {
    const el = $("#status");
    el.className = "status " + cls;
    el.textContent = text;
  }

  async function connect() {
    const t = token();
    const check = await fetch("/api/v1/stats/queues", { headers: { Authorization: "Bearer " + t } }).catch(() => null);
    if (check && check.status === 401) {
      sessionStorage.removeItem("ari_app_token");
      setStatus("error", "token not accepted: reload to enter another");
      return;
    }
    source = new EventSource("/api/v1/stats/stream?token=" + encodeURIComponent(t));
    source.addEventListener("snapshot", (ev) => { render(JSON.parse(ev.data)); setStatus("live", "live"); });
    source.onerror = () => setStatus("error", "reconnecting…");
  }

  tick();
  setInterval(tick, 1000);
  connect();
})();
