// fada-stream browser demo: one RTCPeerConnection for the avatar's media, one websocket for control.
// Static, no build step. The server's messages are documented in fada_stream/serve/control.py.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const video = $("avatar");
const remote = new MediaStream();
let pc = null;
let ws = null;
let micStream = null;

const source = () => document.querySelector('input[name="source"]:checked').value;
const setStatus = (text) => { $("status").textContent = text; };

function log(text, isError = false) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (isError) li.className = "error";
  $("log").prepend(li);
  while ($("log").children.length > 50) $("log").lastChild.remove();
}

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function setConnected(connected) {
  $("connect").disabled = connected;
  for (const id of ["disconnect", "interrupt", "play-sample", "play-file", "reference", "s_ref", "s_audio", "audio_boost"]) {
    $(id).disabled = !connected;
  }
}

// The offer carries every candidate: the server does not trickle ICE.
function iceGatheringComplete(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") resolve();
    });
  });
}

function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function connect() {
  setStatus("connecting");
  $("connect").disabled = true;
  try {
    pc = new RTCPeerConnection();
    if (source() === "microphone") {
      micStream = await navigator.mediaDevices.getUserMedia({ audio: true });
      micStream.getTracks().forEach((t) => pc.addTrack(t, micStream));
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    pc.addTransceiver("video", { direction: "recvonly" });
    // The avatar repeats the microphone: playing it back would feed the speakers into the mic.
    video.muted = source() === "microphone";
    pc.ontrack = (e) => {
      remote.addTrack(e.track);
      video.srcObject = remote;
    };
    pc.onconnectionstatechange = () => {
      setStatus(pc ? pc.connectionState : "disconnected");
      if (pc && pc.connectionState === "failed") disconnect();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc);
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch("offer", {
      method: "POST",
      headers,
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
    await pc.setRemoteDescription({ sdp: body.sdp, type: body.type });
    openSocket(body.session_id);
    setConnected(true);
  } catch (err) {
    log(`connect failed: ${err.message}`, true);
    disconnect();
  }
}

function openSocket(sessionId) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  ws = new WebSocket(`${scheme}://${location.host}/ws/${sessionId}${query}`);
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => { if (e.code !== 1000) log(`control socket closed (${e.code})`, e.code !== 1001); };
}

function onMessage(msg) {
  switch (msg.type) {
    case "hello": {
      const select = $("sample");
      select.replaceChildren(...msg.samples.map((name) => new Option(name, name)));
      for (const key of ["s_ref", "s_audio", "audio_boost"]) {
        if (msg.guidance[key] !== undefined) $(key).value = msg.guidance[key];
        $(key).nextElementSibling.textContent = $(key).value;
      }
      log(`session ${msg.session_id}: ${msg.samples.length} samples, ${msg.fps} fps`);
      break;
    }
    case "stats":
      showStats(msg);
      break;
    case "event":
      log(`${msg.name}${msg.interrupted ? " (interrupted)" : ""}`);
      break;
    case "error":
      log(msg.message, true);
      break;
    case "ack":
      if (msg.of !== "guidance") log(`ok: ${msg.of}`);
      break;
  }
}

function showStats(s) {
  const fmt = (v, digits = 1) => (typeof v === "number" ? v.toFixed(digits) : "-");
  const rows = [
    ["video fps (sent)", fmt(s.outbound_fps)],
    ["model fps", fmt(s.fps)],
    ["real-time factor", fmt(s.rtf, 2)],
    ["window ms p50 / p95", `${fmt(s.window_ms_p50, 0)} / ${fmt(s.window_ms_p95, 0)}`],
    ["steps x NFE", `${s.steps ?? "-"} x ${s.nfe_per_window ?? "-"}`],
    ["queued audio s", fmt(s.queued_audio_s, 2)],
    ["stalls", s.stalls ?? "-"],
  ];
  $("stats").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

function disconnect() {
  if (ws) ws.close(1000);
  if (pc) pc.close();
  if (micStream) micStream.getTracks().forEach((t) => t.stop());
  remote.getTracks().forEach((t) => remote.removeTrack(t));
  ws = pc = micStream = null;
  video.srcObject = null;
  setConnected(false);
  setStatus("disconnected");
}

$("connect").onclick = connect;
$("disconnect").onclick = disconnect;
$("interrupt").onclick = () => send({ type: "interrupt" });
$("play-sample").onclick = () => {
  if ($("sample").value) send({ type: "sample", name: $("sample").value });
};
$("play-file").onclick = async () => {
  const file = $("audio-file").files[0];
  if (file) send({ type: "audio", data: await readAsDataURL(file) });
};
$("reference").onchange = async (e) => {
  const file = e.target.files[0];
  if (file) send({ type: "reference", image: await readAsDataURL(file) });
};
for (const key of ["s_ref", "s_audio", "audio_boost"]) {
  $(key).oninput = () => { $(key).nextElementSibling.textContent = $(key).value; };
  $(key).onchange = () => send({ type: "guidance", [key]: Number($(key).value) });
}
for (const radio of document.querySelectorAll('input[name="source"]')) {
  radio.onchange = () => {
    if (!pc) return;
    if (source() === "microphone" && !micStream) log("reconnect to use the microphone", true);
    video.muted = source() === "microphone";
    if (micStream) send({ type: "mirror", enabled: source() === "microphone" });
  };
}
setConnected(false);
