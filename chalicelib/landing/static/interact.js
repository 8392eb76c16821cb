// Reel's interactions, drawn by the page over the video (never burned into it): buttons and
// hotspots on the picture, choices and forms in cards, and the chapters (a menu and marks under
// the video). Everything is a real button, link or form control, so it is reachable from the
// keyboard; what appears is announced in an aria-live region; everything stays in the safe
// area (5 % from the edges, the bottom fifth left to the captions and the controls).
// Events (through player.js, signed and deduplicated as the others): interaction_shown (once a
// view), interaction_click, choice (sent at once: on the stream the record changes and the rest
// of the video follows it; on the MP4 it jumps to the option's chapter) and form_submit.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("reel-config").textContent);
  var player = window.reelPlayer;
  var video = document.getElementById("reel-video");
  var overlay = document.getElementById("reel-overlay");
  var corner = document.getElementById("reel-corner");
  var cards = document.getElementById("reel-cards");
  var nav = document.getElementById("reel-chapters");
  var list = document.getElementById("reel-chapter-list");
  var marks = document.getElementById("reel-marks");
  var fill = document.getElementById("reel-marks-fill");
  var announcer = document.getElementById("reel-announce");
  if (!player || !video || !overlay) return;
  var SAFE = { left: 0.05, top: 0.05, right: 0.95, bottom: 0.8 };

  var interactions = config.interactions || [];
  var chapters = config.chapters || [];
  var shown = {};     // interaction_shown sent in this view
  var done = {};      // choices answered, forms sent or skipped: not shown again in this view
  var elements = {};  // id → the element on the page while it is visible
  var state = window.reelInteract = { visible: [], chapters: chapters, answered: [] };

  function announce(text) {
    // Cleared first: the same words twice are announced twice.
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function clock(seconds) {
    var s = Math.max(0, Math.round(seconds));
    return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }
  function duration() {
    return isFinite(video.duration) && video.duration > 0 ? video.duration : (config.duration || 0);
  }
  function seek(time, play) {
    video.currentTime = time;
    if (play) video.play().catch(function () {});
  }
  function chapterTime(id) {
    for (var i = 0; i < chapters.length; i++) if (chapters[i].id === id) return chapters[i].time;
    return null;
  }

  // ── placement: at its `at` (canvas fractions), moved inside the safe area ──────────────────
  function place(node, item) {
    if (!item.at) return;
    node.style.left = (item.at[0] * 100) + "%";
    node.style.top = (item.at[1] * 100) + "%";
    if (item.size) {
      node.style.width = (item.size[0] * 100) + "%";
      node.style.height = (item.size[1] * 100) + "%";
    }
    clamp(node);
  }
  function clamp(node) {
    var box = overlay.getBoundingClientRect();
    if (!box.width || !box.height) return;
    var w = node.offsetWidth, h = node.offsetHeight;
    var cx = parseFloat(node.style.left) / 100 * box.width;
    var cy = parseFloat(node.style.top) / 100 * box.height;
    var minX = SAFE.left * box.width + w / 2, maxX = SAFE.right * box.width - w / 2;
    var minY = SAFE.top * box.height + h / 2, maxY = SAFE.bottom * box.height - h / 2;
    cx = maxX < minX ? box.width / 2 : Math.min(Math.max(cx, minX), maxX);
    cy = maxY < minY ? (SAFE.top + SAFE.bottom) / 2 * box.height : Math.min(Math.max(cy, minY), maxY);
    node.style.left = (cx / box.width * 100) + "%";
    node.style.top = (cy / box.height * 100) + "%";
  }

  // ── what each kind looks like ───────────────────────────────────────────────────────────
  function act(item) {
    player.send("interaction_click", { interaction: item.id });
    player.flush();
    var action = item.action || {};
    if (action.chapter) {
      var time = chapterTime(action.chapter);
      if (time !== null) seek(time, true);
    } else if (action.seek !== null && action.seek !== undefined) {
      seek(action.seek, true);
    } else if (action.set) {
      // The record changes on the server (the click says which interaction); the stream follows.
      refresh(video.currentTime);
    }
  }
  function button(item) {
    var node;
    if (item.action && item.action.open) {
      node = el("a", "reel-ibutton", item.label);
      node.href = item.action.open;
    } else {
      node = el("button", "reel-ibutton", item.label);
      node.type = "button";
    }
    node.addEventListener("click", function () { act(item); });
    return node;
  }
  function hotspot(item) {
    var node = el("button", "reel-hotspot");
    node.type = "button";
    node.setAttribute("aria-label", item.label);
    node.title = item.label;
    node.addEventListener("click", function () { act(item); });
    return node;
  }
  function card(item, body) {
    var node = el("section", "reel-card");
    node.setAttribute("role", "group");
    var title = el("h2", "reel-card-title", item.label);
    title.id = "reel-card-" + item.id;
    node.setAttribute("aria-labelledby", title.id);
    node.appendChild(title);
    node.appendChild(body);
    var skip = el("button", "reel-skip", "Skip");
    skip.type = "button";
    skip.addEventListener("click", function () { finish(item); video.play().catch(function () {}); });
    node.appendChild(skip);
    return node;
  }
  function choice(item) {
    var options = el("div", "reel-options");
    item.options.forEach(function (option) {
      var b = el("button", "reel-option", option.label);
      b.type = "button";
      b.setAttribute("data-value", option.value);
      b.addEventListener("click", function () { choose(item, option); });
      options.appendChild(b);
    });
    return card(item, options);
  }
  function form(item) {
    var f = el("form", "reel-form");
    f.noValidate = false;
    item.fields.forEach(function (field) {
      var id = "reel-f-" + item.id + "-" + field.name;
      if (field.type === "single" || field.type === "multiple") {
        var set = el("fieldset", "reel-fieldset");
        set.appendChild(el("legend", "", field.label));
        field.options.forEach(function (option, i) {
          var label = el("label", "reel-check");
          var input = el("input");
          input.type = field.type === "single" ? "radio" : "checkbox";
          input.name = field.name;
          input.value = option;
          input.id = id + "-" + i;
          if (field.required && field.type === "single") input.required = true;
          label.appendChild(input);
          label.appendChild(document.createTextNode(" " + option));
          set.appendChild(label);
        });
        f.appendChild(set);
      } else {
        var label = el("label", "reel-label", field.label);
        label.htmlFor = id;
        var input = el("input", "reel-input");
        input.type = field.type === "email" ? "email" : "text";
        input.name = field.name;
        input.id = id;
        input.maxLength = field.max_length;
        input.required = !!field.required;
        f.appendChild(label);
        f.appendChild(input);
      }
    });
    var submit = el("button", "reel-option", item.submit || "Send");
    submit.type = "submit";
    f.appendChild(submit);
    f.addEventListener("submit", function (event) {
      event.preventDefault();
      var answers = {};
      item.fields.forEach(function (field) {
        var inputs = f.querySelectorAll("[name='" + field.name + "']");
        if (field.type === "multiple") {
          answers[field.name] = Array.prototype.filter.call(inputs, function (i) { return i.checked; })
            .map(function (i) { return i.value; });
        } else if (field.type === "single") {
          var picked = Array.prototype.filter.call(inputs, function (i) { return i.checked; });
          if (picked.length) answers[field.name] = picked[0].value;
        } else if (inputs[0].value) {
          answers[field.name] = inputs[0].value;
        }
      });
      player.send("form_submit", { interaction: item.id, answers: answers });
      player.flush();
      state.answered.push(item.id);
      finish(item);
      announce("Thank you: your answers were sent.");
      video.play().catch(function () {});
    });
    return card(item, f);
  }

  // ── choices: the stream follows the record; the MP4 jumps to the option's chapter ─────────
  function choose(item, option) {
    state.answered.push(item.id);
    finish(item);
    announce("You chose " + option.label + ".");
    var sent = player.postNow("choice", { interaction: item.id, option: option.value });
    if (player.mode === "mp4") {
      if (option.seek !== null && option.seek !== undefined) seek(option.seek, true);
      else video.play().catch(function () {});
      return;
    }
    sent.then(function () { refresh(item.end, item.id); }, function () { video.play().catch(function () {}); });
  }
  // The interactions and chapters for the record as it is now, and the stream from `time` on
  // (or from the end of interaction `after` on the new timeline).
  function refresh(time, after) {
    if (!config.interactive_url || player.mode === "mp4") return;
    fetch(config.interactive_url, { headers: { accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (fresh) {
        interactions = fresh.interactions;
        chapters = state.chapters = fresh.chapters;
        drawChapters();
        var resume = time;
        interactions.forEach(function (i) { if (i.id === after) resume = i.end; });
        player.reload(resume);
      })
      .catch(function () { video.play().catch(function () {}); });
  }

  // ── showing and hiding at their times ───────────────────────────────────────────────────
  var makers = { button: button, hotspot: hotspot, choice: choice, form: form };
  var spoken = { button: "Button", hotspot: "Clickable area", choice: "Question", form: "Form" };

  function finish(item) {
    done[item.id] = true;
    hide(item.id);
    update();
  }
  function show(item) {
    var node = makers[item.type](item);
    node.setAttribute("data-interaction", item.id);
    elements[item.id] = node;
    if (item.type === "choice" || item.type === "form") {
      cards.appendChild(node);
      if (!video.paused) video.pause();  // time to answer; Skip or an answer plays on
    } else if (item.at) {
      node.classList.add("reel-placed");
      overlay.appendChild(node);
      place(node, item);
    } else {
      corner.appendChild(node);
    }
    announce(spoken[item.type] + ": " + item.label + (item.type === "choice" || item.type === "form"
      ? ". The video is paused; answer below or skip." : ""));
    if (!shown[item.id]) {
      shown[item.id] = true;
      player.send("interaction_shown", { interaction: item.id });
    }
  }
  function hide(id) {
    var node = elements[id];
    if (!node) return;
    // Keep the keyboard where it was: focus inside a vanishing card goes back to the video.
    if (node.contains(document.activeElement)) video.focus();
    node.parentNode.removeChild(node);
    delete elements[id];
  }
  function update() {
    var t = video.currentTime;
    var visible = [];
    interactions.forEach(function (item) {
      var on = !done[item.id] && t >= item.start && t < item.end;
      if (on) visible.push(item.id);
      if (on && !elements[item.id]) show(item);
      else if (!on && elements[item.id]) hide(item.id);
    });
    state.visible = visible;
    var d = duration();
    if (fill && d) fill.style.width = Math.min(100, t / d * 100) + "%";
  }

  // ── chapters: a menu under the video and marks on a progress bar ──────────────────────────
  function drawChapters() {
    if (!list) return;
    list.textContent = "";
    nav.hidden = chapters.length === 0;
    Array.prototype.slice.call(marks.querySelectorAll(".reel-mark")).forEach(function (m) { m.remove(); });
    var d = duration();
    chapters.forEach(function (chapter) {
      var item = el("li");
      var b = el("button", "reel-chapter");
      b.type = "button";
      b.setAttribute("data-chapter", chapter.id);
      b.appendChild(el("span", "reel-chapter-time", clock(chapter.time)));
      b.appendChild(document.createTextNode(" " + chapter.title));
      b.addEventListener("click", function () {
        seek(chapter.time, true);
        announce("Chapter: " + chapter.title);
      });
      item.appendChild(b);
      list.appendChild(item);
      if (d) {
        var mark = el("span", "reel-mark");
        mark.style.left = Math.min(100, chapter.time / d * 100) + "%";
        mark.title = chapter.title;
        mark.addEventListener("click", function () { seek(chapter.time, true); });
        marks.appendChild(mark);
      }
    });
  }

  video.addEventListener("timeupdate", update);
  video.addEventListener("seeked", update);
  video.addEventListener("loadedmetadata", drawChapters);
  video.addEventListener("durationchange", drawChapters);
  window.addEventListener("resize", function () {
    interactions.forEach(function (item) {
      if (elements[item.id] && item.at) place(elements[item.id], item);
    });
  });
  drawChapters();
  update();
})();
