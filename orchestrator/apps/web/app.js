// vidchat page: one job (video + record + chat) per tab; its id lives only in this page's memory,
// so two tabs never share a video or a conversation.
"use strict";
const $ = (id) => document.getElementById(id);
let job = null;        // current job id
let record = null;     // the job's summary once ready (objects with trajectories)
let highlighted = null; // object id highlighted on the player
let pollTimer = null;

function fmt(t) {
  t = Math.max(0, t);
  const m = Math.floor(t / 60), s = Math.floor(t % 60);
  const h = Math.floor(m / 60);
  const mm = String(m % 60).padStart(2, "0"), ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}
function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function showError(text) {
  const e = $("error");
  e.textContent = text || "";
  e.hidden = !text;
}
async function api(path, options) {
  const r = await fetch(path, options);
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) throw new Error((body && (body.error || (body.detail && JSON.stringify(body.detail)))) || `${r.status} ${r.statusText}`);
  return body;
}

// ---------------------------------------------------------------- set-up
async function init() {
  const cfg = await api("/api/config");
  for (const p of cfg.profiles) {
    const st = (cfg.profile_status || {})[p];
    const label = p.split("/").pop().replace(/\.ya?ml$/, "");
    const o = new Option(st && !st.available ? `${label} (unavailable: ${st.reason})` : label, p);
    if (st && !st.available) o.disabled = true;
    $("profile").add(o);
  }
  if (cfg.default_profile) $("profile").value = cfg.default_profile;
  for (const s of cfg.samples) $("sample").add(new Option(s, s));
  for (const l of cfg.llms) { const o = document.createElement("option"); o.value = l; $("llms").append(o); }
  window.vidchatConfig = cfg;
  $("open-sample").onclick = () => start(() => api("/api/sample", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: $("sample").value, profile: $("profile").value, llm: $("llm").value }),
  }));
  $("file").onchange = () => {
    const f = $("file").files[0];
    if (!f) return;
    const limit = cfg.max_upload_mb * 1024 * 1024;
    if (f.size > limit) { showError(`${f.name} is larger than the ${cfg.max_upload_mb} MB upload limit`); return; }
    const q = new URLSearchParams({ name: f.name, profile: $("profile").value, llm: $("llm").value });
    start(() => api(`/api/upload?${q}`, { method: "PUT", body: f }));
  };
  $("ask").onsubmit = (ev) => { ev.preventDefault(); ask(); };
  $("timeline").onclick = (ev) => {
    if (!record) return;
    const r = ev.target.getBoundingClientRect();
    const [a, b] = record.timeline_axis;
    const frac = ((ev.clientX - r.left) / r.width - a) / (b - a);
    if (frac >= 0 && frac <= 1) seek(frac * record.video.duration);
  };
  const player = $("player");
  player.addEventListener("timeupdate", drawOverlay);
  player.addEventListener("seeked", drawOverlay);
  player.addEventListener("loadedmetadata", drawOverlay);
  window.addEventListener("resize", drawOverlay);
}

async function start(request) {
  showError("");
  clearInterval(pollTimer);
  record = null; highlighted = null;
  $("workspace").hidden = true;
  $("messages").innerHTML = "";
  $("progress-box").hidden = false;
  $("status").textContent = "starting…";
  try {
    job = (await request()).job;
  } catch (e) {
    $("progress-box").hidden = true;
    showError(e.message);
    return;
  }
  pollTimer = setInterval(poll, 500);
  poll();
}

async function poll() {
  const mine = job;
  let s;
  try { s = await api(`/api/jobs/${mine}`); } catch (e) { showError(e.message); clearInterval(pollTimer); return; }
  if (mine !== job) return; // another video was opened meanwhile
  const done = Object.values(s.perceivers).filter((v) => !/waiting|running/.test(v)).length;
  const total = Math.max(1, Object.keys(s.perceivers).length);
  $("progress").value = s.state === "ready" ? 1 : 0.5 * s.decode + 0.5 * done / total;
  $("status").textContent = `${s.video ? s.video.name + " — " : ""}${s.state}: ${s.message} (${s.elapsed} s)`;
  $("perceivers").innerHTML = Object.entries(s.perceivers)
    .map(([k, v]) => `<li data-perceiver="${escapeHtml(k)}">${escapeHtml(k)}: ${escapeHtml(v)}</li>`).join("");
  if (s.state === "error") { clearInterval(pollTimer); showError(s.message); }
  if (s.state === "ready") { clearInterval(pollTimer); showRecord(s); }
}

function showRecord(s) {
  record = s;
  document.body.dataset.state = "ready";
  $("workspace").hidden = false;
  $("player").src = `/api/jobs/${s.job}/video`;
  $("subs").src = `/api/jobs/${s.job}/speech.vtt`;
  $("dl-annotated").href = `/api/jobs/${s.job}/annotated.mp4`;
  $("dl-timeline").href = `/api/jobs/${s.job}/timeline.html`;
  $("timeline").src = `/api/jobs/${s.job}/timeline.png`;
  const list = $("objects");
  list.innerHTML = "";
  for (const o of s.objects) {
    const li = document.createElement("li");
    li.dataset.obj = o.id;
    li.style.setProperty("--c", o.color);
    li.textContent = `${o.id} ${fmt(o.first_seen)}–${fmt(o.last_seen)}`;
    li.onclick = () => focusObject(o.id);
    list.append(li);
  }
  if (!s.objects.length) list.innerHTML = "<li>no objects in the record</li>";
}

// ---------------------------------------------------------------- player
function seek(t) {
  const p = $("player");
  p.pause();
  p.currentTime = Math.min(Math.max(0, t), (record && record.video.duration) || t);
  $("now").textContent = fmt(p.currentTime);
}
function focusObject(id) {
  const o = record && record.objects.find((x) => x.id === id);
  if (!o) return;
  highlighted = id;
  for (const li of $("objects").children) li.classList.toggle("hl", li.dataset.obj === id);
  seek(o.first_seen);
  drawOverlay();
}
function boxAt(o, t) {
  const tr = o.trajectory;
  if (!tr.length || t < o.first_seen - 1e-3 || t > o.last_seen + 1e-3) return null;
  if (t <= tr[0][0]) return tr[0].slice(1);
  for (let i = 0; i + 1 < tr.length; i++) {
    const a = tr[i], b = tr[i + 1];
    if (a[0] <= t && t <= b[0]) {
      const w = b[0] > a[0] ? (t - a[0]) / (b[0] - a[0]) : 0;
      return [1, 2, 3, 4].map((k) => a[k] + (b[k] - a[k]) * w);
    }
  }
  return tr[tr.length - 1].slice(1);
}
function drawOverlay() {
  const p = $("player"), c = $("overlay");
  $("now").textContent = fmt(p.currentTime || 0);
  c.width = p.clientWidth; c.height = p.clientHeight;
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (!record || !highlighted) return;
  const o = record.objects.find((x) => x.id === highlighted);
  const box = o && boxAt(o, p.currentTime);
  if (!box) return;
  const s = c.width / record.video.width;
  g.strokeStyle = o.color; g.lineWidth = 3;
  g.strokeRect(box[0] * s, box[1] * s, (box[2] - box[0]) * s, (box[3] - box[1]) * s);
  g.fillStyle = o.color; g.font = "bold 14px sans-serif";
  g.fillText(o.id, box[0] * s + 4, Math.max(14, box[1] * s - 4));
}

// ---------------------------------------------------------------- chat
const TIME_RE = /\[((?:\d{1,2}:)?\d{1,3}:\d{2}(?:\.\d+)?)(?:\s*(?:-|–|—|to)\s*(?:\d{1,2}:)?\d{1,3}:\d{2}(?:\.\d+)?)?\]/g;
function seconds(text) {
  return text.split(":").reduce((acc, x) => acc * 60 + parseFloat(x), 0);
}
function linkify(text) {
  let html = escapeHtml(text).replace(TIME_RE, (m, first) =>
    `<a class="cite" data-t="${seconds(first)}">${m}</a>`);
  if (record && record.objects.length) {
    const ids = record.objects.map((o) => o.id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    const re = new RegExp(`(^|[^\\w#])(${ids.join("|")})(?![\\w#])`, "g");
    html = html.replace(re, (m, pre, id) => `${pre}<a class="obj" data-obj="${id}">${id}</a>`);
  }
  return html;
}
// The answer first; then only the evidence vidchat verified against the record, as clickable
// citations; and a plain sentence when no quoted line could be found in the record.
function evidenceHtml(a) {
  const ok = (a.evidence || []).filter((e) => e.verified && e.relevant !== false);
  const off = (a.evidence || []).filter((e) => e.verified && e.relevant === false);
  const bad = (a.evidence || []).filter((e) => !e.verified).concat(off);
  let html = "";
  if (a.answered_by === "facts") html += `<span class="note">computed from the record, no model needed</span>`;
  if (ok.length) {
    html += `<ul class="evidence">` + ok.map((e) => {
      const at = e.start !== null && e.start !== undefined ? `[${fmtTime(e.start)}] ` : "";
      return `<li>${linkify(at + (e.line || e.quote))}</li>`;
    }).join("") + `</ul>`;
    if (bad.length) html += `<span class="note">${bad.length} quoted line(s) not found in the record, not shown</span>`;
  } else if (off.length) {
    html += `<span class="note unverified">The record lines the model quoted do not bear on the question: treat this answer as unsupported.</span>`;
  } else if (a.answered_by !== "facts") {
    html += `<span class="note unverified">${bad.length
      ? "The evidence the model quoted could not be found in the record: treat this answer as unsupported."
      : "No evidence: the model quoted no record line for this answer."}</span>`;
  }
  return html;
}
function fmtTime(t) {
  const s = Math.floor(t), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(ss)}` : `${two(m)}:${two(ss)}`;
}
function wire(el) {
  for (const a of el.querySelectorAll("a.cite")) a.onclick = () => seek(parseFloat(a.dataset.t));
  for (const a of el.querySelectorAll("a.obj")) a.onclick = () => focusObject(a.dataset.obj);
}
function addMessage(cls, html) {
  const d = document.createElement("div");
  d.className = `msg ${cls}`;
  d.innerHTML = html;
  $("messages").append(d);
  $("messages").scrollTop = $("messages").scrollHeight;
  return d;
}

async function ask() {
  const q = $("question").value.trim();
  if (!q || !record) return;
  const mine = job;
  $("question").value = "";
  $("send").disabled = true;
  addMessage("user", escapeHtml(q));
  const bot = addMessage("bot streaming", "…");
  let text = "";
  try {
    const r = await fetch(`/api/jobs/${mine}/ask`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question: q, llm: $("llm").value }),
    });
    if (!r.ok) {
      let msg = `${r.status}`;
      try { const b = await r.json(); msg = b.error || JSON.stringify(b.detail) || msg; } catch (_) {}
      throw new Error(msg);
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line);
        if (msg.delta !== undefined) {
          text += msg.delta;
          bot.dataset.chunks = String(Number(bot.dataset.chunks || 0) + 1);
          bot.innerHTML = linkify(text);
          wire(bot);
        } else if (msg.answer) {
          const a = msg.answer;
          const facts = [];
          if (a.citations.length) facts.push("times " + a.citations.map((c) => c.text).join(" "));
          if (a.objects.length) facts.push("objects " + a.objects.join(", "));
          const invented = a.unknown_objects.concat(a.unsupported || []);
          if (invented.length) facts.push("NOT in the record: " + invented.join(", "));
          facts.push(`${a.completion_tokens} tokens, ${a.seconds.toFixed(1)} s · ${a.llm}`);
          bot.innerHTML = linkify(a.text) + evidenceHtml(a) +
            `<span class="facts">${linkify(facts.join(" · "))}</span>`;
          wire(bot);
        } else if (msg.error) {
          throw new Error(msg.error);
        }
      }
    }
    bot.classList.remove("streaming");
    bot.classList.add("done");
  } catch (e) {
    bot.classList.remove("streaming");
    bot.classList.add("err", "done");
    bot.textContent = `error: ${e.message}`;
  } finally {
    $("send").disabled = false;
  }
}

init().catch((e) => showError(`could not load the app: ${e.message}`));
