// Reel's landing-page player: plays the recipient's personal HLS stream (rendered just in time,
// with their current data) through hls.js, or natively where the browser plays HLS itself, and
// falls back to the MP4 of the <source> when there is no stream.
// It measures the view and sends it with navigator.sendBeacon.
// Events: impression, play, progress (each 10 % step once per view, only when played through),
// pause, seek, ended, replay, cta_click, and interact.js's interaction events. Batched (≤ 50 a
// request), flushed every second and when the page is hidden or left.
// Tracking follows the view's mode (config.tracking): "off" sends nothing; "anonymous" sends
// events the server keeps without the recipient; "ask" shows the consent banner and sends
// anonymous events until the viewer allows more (the server decides again on every request).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("reel-config").textContent);
  var video = document.getElementById("reel-video");
  var cta = document.getElementById("reel-cta");
  var MAX = 50;
  // What plays, and hls.js's errors (for diagnostics and tests).
  var player = window.reelPlayer = { mode: "mp4", hls: null, errors: [] };

  function useMp4() {
    if (player.mode === "mp4") return;
    if (player.hls) { player.hls.destroy(); player.hls = null; }
    player.mode = "mp4";
    video.removeAttribute("src");
    video.load();  // back to the <source> elements
  }
  function useStream(url) {
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      player.mode = "native";  // Safari, iOS, recent Chrome: the browser plays HLS itself
      video.addEventListener("error", function () {
        if (player.mode === "native" && video.getAttribute("src") === url) useMp4();
      });
      video.src = url;
    } else if (window.Hls && window.Hls.isSupported()) {
      // No worker: the page's CSP allows scripts from 'self' only (the transmuxing is light).
      // A chunk still being rendered is answered 503 (on AWS after a wait of about 2 s): retry
      // it soon and steadily rather than with hls.js's doubling delays (1 s, 2 s, 4 s...).
      var retry = { maxNumRetry: 20, retryDelayMs: 500, maxRetryDelayMs: 500, backoff: "linear" };
      var timeout = { maxNumRetry: 4, retryDelayMs: 0, maxRetryDelayMs: 0 };
      var hls = new window.Hls({
        enableWorker: false,
        fragLoadPolicy: {
          default: {
            maxTimeToFirstByteMs: 30000,
            maxLoadTimeMs: 60000,
            timeoutRetry: timeout,
            errorRetry: retry,
          },
        },
      });
      player.mode = "hls.js";
      player.hls = hls;
      var recovered = false;
      hls.on(window.Hls.Events.ERROR, function (event, data) {
        player.errors.push({ type: data.type, details: data.details, fatal: !!data.fatal });
        if (!data.fatal) return;
        if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
          recovered = true;
          hls.recoverMediaError();
        } else {
          useMp4();
        }
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    }
  }
  if (config.hls_url) useStream(config.hls_url);
  // The stream again, planned from the record as it is now (after a choice changed it), from
  // `time` on. False on the MP4, which cannot change.
  player.reload = function (time) {
    if (player.mode === "mp4" || !config.hls_url) return false;
    var url = config.hls_url + "?v=" + Date.now();
    var resume = function () { video.currentTime = time; video.play().catch(function () {}); };
    if (player.mode === "native") {
      video.addEventListener("loadedmetadata", resume, { once: true });
      video.src = url;
    } else {
      player.hls.once(window.Hls.Events.MANIFEST_PARSED, resume);
      player.hls.loadSource(url);
    }
    return true;
  };
  var queue = [];
  var timer = null;
  var counter = 0;
  var tracking = config.tracking || "identified";
  var consent = null;  // the banner's answer in this view: true, false or null (none yet)

  function randomId() {
    if (window.crypto && crypto.getRandomValues) {
      var bytes = new Uint8Array(12);
      crypto.getRandomValues(bytes);
      return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    }
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  var view = randomId();  // groups this view's anonymous events; says nothing of the viewer

  var banner = document.getElementById("reel-consent");
  if (banner && tracking === "ask") {
    var answer = function (yes) {
      consent = yes;
      banner.hidden = true;
      flush();  // the view's events held until now go with the answer
    };
    document.getElementById("reel-consent-accept").addEventListener("click", function () { answer(true); });
    document.getElementById("reel-consent-decline").addEventListener("click", function () { answer(false); });
    banner.hidden = false;
  }

  function eventId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    counter += 1;
    return Date.now().toString(36) + "-" + counter + "-" + Math.random().toString(36).slice(2, 12);
  }
  function at(seconds) { return Math.round(Math.max(0, seconds || 0) * 1000) / 1000; }

  function post(events) {
    var message = { token: config.token, events: events, view: view };
    if (consent !== null) message.consent = consent;
    var body = JSON.stringify(message);
    var sent = false;
    if (navigator.sendBeacon) {
      try { sent = navigator.sendBeacon(config.events_url, new Blob([body], { type: "application/json" })); }
      catch (e) { sent = false; }
    }
    if (!sent && window.fetch) {
      fetch(config.events_url, { method: "POST", body: body, keepalive: true,
                                 headers: { "content-type": "application/json" } }).catch(function () {});
    }
  }
  // While the banner waits for an answer, events are held (the view's events all go one way:
  // identified once allowed, else anonymous); leaving the page sends them anonymous.
  function waiting() { return tracking === "ask" && consent === null; }
  function flush(leaving) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (waiting() && leaving !== true) return;
    while (queue.length) post(queue.splice(0, MAX));
  }
  function send(kind, extra) {
    if (tracking === "off") return;
    var event = { id: eventId(), kind: kind, ts: Date.now(), position: at(video.currentTime) };
    for (var key in extra) event[key] = extra[key];
    queue.push(event);
    if (waiting() && queue.length > 10 * MAX) queue.shift();  // held too long: keep the latest
    if (queue.length >= MAX) flush();
    else if (!timer) timer = setTimeout(flush, 1000);
  }

  var reached = {};      // progress steps sent in this view
  var lastTime = 0;      // where continuous playback last was
  var seekFrom = null;
  var finished = false;  // the view ended: the next play is a replay

  function progressTo(time) {
    var duration = video.duration;
    if (!duration || !isFinite(duration)) return;
    var pct = Math.min(100, Math.floor((time / duration) * 100 + 1e-6));
    for (var step = 10; step <= pct; step += 10) {
      if (!reached[step]) { reached[step] = true; send("progress", { progress: step }); }
    }
  }

  send("impression", { position: 0 });
  video.addEventListener("play", function () {
    if (finished) {
      finished = false; reached = {}; lastTime = 0;
      send("replay", { position: 0 });
    } else {
      send("play");
    }
  });
  video.addEventListener("pause", function () { if (!video.ended) send("pause"); });
  video.addEventListener("seeking", function () { if (seekFrom === null) seekFrom = lastTime; });
  video.addEventListener("seeked", function () {
    send("seek", { seek_from: at(seekFrom === null ? lastTime : seekFrom) });
    seekFrom = null;
    lastTime = video.currentTime;
  });
  // Playback moves at most this far between two timeupdates (about 4 a second); further is a jump.
  function step() { return 1.5 * Math.max(1, video.playbackRate || 1); }
  video.addEventListener("timeupdate", function () {
    var now = video.currentTime;
    // Only playback counts: a jump (seek) is not watching the part it skipped.
    if (!video.seeking && now >= lastTime && now - lastTime < step()) progressTo(now);
    if (!video.seeking) lastTime = now;
  });
  video.addEventListener("ended", function () {
    if (video.duration - lastTime < step()) progressTo(video.duration);
    finished = true;
    send("ended", { position: at(video.duration) });
    flush();
  });
  // For interact.js (the interactions drawn over the video): the same queue and signing.
  player.send = send;
  player.flush = flush;
  // Sent at once, whatever the tracking mode: a choice changes the viewer's own video.
  player.postNow = function (kind, extra) {
    var event = { id: eventId(), kind: kind, ts: Date.now(), position: at(video.currentTime) };
    for (var key in extra) event[key] = extra[key];
    var message = { token: config.token, events: [event], view: view };
    if (consent !== null) message.consent = consent;
    return fetch(config.events_url, { method: "POST", body: JSON.stringify(message),
                                      headers: { "content-type": "application/json" } });
  };
  if (cta) {
    cta.addEventListener("click", function () { send("cta_click"); flush(); });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush(true);
  });
  window.addEventListener("pagehide", function () { flush(true); });
})();
