/* tmis: the security-key ceremonies (WebAuthn). Options come from the node as JSON (base64url for binary),
   the browser's answer goes back the same way. No inline script (CSP). */
(function () {
  "use strict";

  function b64urlToBuf(s) {
    var b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - s.length % 4) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) { out[i] = b.charCodeAt(i); }
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (r) { return r.json().then(function (j) { j.status = r.status; return j; }); });
  }
  function say(box, text, bad) {
    var m = box.querySelector("[data-webauthn-message]");
    if (m) { m.textContent = text; m.className = "mt-2 small " + (bad ? "text-danger" : "text-muted"); }
  }
  function credentialJSON(c) {
    var r = c.response, out = { id: c.id, rawId: bufToB64url(c.rawId), type: c.type, clientExtensionResults: {} };
    out.response = { clientDataJSON: bufToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64url(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = bufToB64url(r.authenticatorData);
      out.response.signature = bufToB64url(r.signature);
      out.response.userHandle = r.userHandle ? bufToB64url(r.userHandle) : null;
    }
    return out;
  }

  function login(box) {
    var csrf = box.getAttribute("data-csrf");
    say(box, "请触摸安全密钥……");
    post(box.getAttribute("data-options-url"), csrf).then(function (o) {
      o.challenge = b64urlToBuf(o.challenge);
      (o.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
      return navigator.credentials.get({ publicKey: o });
    }).then(function (cred) {
      return post(box.getAttribute("data-verify-url"), csrf, { credential: credentialJSON(cred), next: box.getAttribute("data-next") });
    }).then(function (res) {
      if (res.ok) { window.location.assign(res.next); } else { say(box, res.message || "验证未通过，请重试", true); }
    }).catch(function () { say(box, "没有完成验证（未触摸密钥、超时或密钥不匹配），请重试。", true); });
  }

  function register(box) {
    var csrf = box.getAttribute("data-csrf");
    var code = box.querySelector("[data-webauthn-code]").value.trim();
    var name = box.querySelector("[data-webauthn-name]").value.trim();
    if (!code) { say(box, "请先填写登记码。", true); return; }
    say(box, "请触摸安全密钥……");
    post(box.getAttribute("data-options-url"), csrf, { code: code }).then(function (res) {
      if (!res.ok) { throw new Error(res.message); }
      var o = res.options;
      o.challenge = b64urlToBuf(o.challenge);
      o.user.id = b64urlToBuf(o.user.id);
      (o.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
      return navigator.credentials.create({ publicKey: o });
    }).then(function (cred) {
      return post(box.getAttribute("data-verify-url"), csrf, { code: code, name: name, credential: credentialJSON(cred) });
    }).then(function (res) {
      if (!res.ok) { throw new Error(res.message); }
      say(box, "已登记安全密钥“" + res.key + "”。");
      var list = box.querySelector("[data-recovery-list]");
      res.recovery_codes.forEach(function (c) { var li = document.createElement("li"); li.textContent = c; list.appendChild(li); });
      box.querySelector("[data-recovery-codes]").classList.remove("d-none");
    }).catch(function (e) { say(box, (e && e.message) || "没有完成登记，请重试。", true); });
  }

  document.addEventListener("click", function (ev) {
    var start = ev.target.closest && ev.target.closest("[data-webauthn-start]");
    var box = start && start.closest("[data-webauthn]");
    if (!box) { return; }
    ev.preventDefault();
    if (!window.PublicKeyCredential) { say(box, "此浏览器不支持安全密钥，请使用新版 Chrome、Edge、Firefox 或 360 极速浏览器。", true); return; }
    if (box.getAttribute("data-webauthn") === "login") { login(box); } else { register(box); }
  });
})();
