// Sharing a private transcript, from its owner's unlocked page:
// - an encrypted link: a snapshot sealed under a fresh key SK; the server stores the envelope, the link
//   carries SK after '#', which browsers never send (expiry, a view limit and Revoke delete the server copy);
// - a teammate: the transcript key TK sealed to their public key (members of its workspace with private
//   transcripts on); they open it with their own keys, read only.
import * as sc from "/static/sotto-crypto-0.1.js";
import { snapshot } from "/static/private-export-0.2.js";

const $ = (id) => document.getElementById(id);
const { t, when } = window.SottoI18n;

function row(text, buttonLabel, onClick) {
  const li = document.createElement("li");
  li.append(text + " ");
  if (buttonLabel) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "link"; b.textContent = buttonLabel;
    b.addEventListener("click", onClick);
    li.appendChild(b);
  }
  return li;
}

export function mountSharing({ id, tk, owner, doc }) {
  const { api } = window.Sotto;
  $("share-panel").classList.remove("hidden");
  const status = $("share-status");
  const fail = (err) => { status.className = "error"; status.textContent = err.message; };

  async function links() {
    const all = (await api("GET", `/api/v1/transcripts/${id}/shares`)).filter((l) => l.sealed && !l.revoked);
    $("share-links").replaceChildren(...all.map((l) => row(
      [t("Encrypted link made {time}", { time: when(l.created_at) }), l.expires_at ? t("until {time}", { time: when(l.expires_at) }) : "",
        l.max_views ? t("views: {views} of {max}", { views: l.views, max: l.max_views }) : t("views: {views}", { views: l.views })]
        .filter(Boolean).join(", "),
      t("Revoke"), async () => { try { await api("DELETE", `/api/v1/shares/${l.id}`); await links(); } catch (err) { fail(err); } })));
  }

  $("share-link-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    try {
      const days = data.get("expires") ? Number(data.get("expires")) : null;
      const views = data.get("max_views") ? Number(data.get("max_views")) : null;
      const link = await api("POST", `/api/v1/transcripts/${id}/sealed-shares`, { expires_in_days: days, max_views: views });
      const sk = sc.newShareKey();
      const envelope = await sc.sealShare(sk, snapshot(doc()), link.id);
      await api("PUT", `/api/v1/shares/${link.id}/envelope`, { envelope });
      $("share-url").value = `${location.origin}${link.path}${sc.shareFragment(sk)}`;
      sk.fill(0);
      $("share-made").classList.remove("hidden");
      status.className = "ok"; status.textContent = t("Link made. It is shown only now: copy it.");
      await links();
    } catch (err) { fail(err); }
  });
  $("share-copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("share-url").value); status.textContent = t("Copied"); }
    catch (err) { $("share-url").select(); status.textContent = t("Select the link and copy it."); }
  });

  async function teammates() {
    const people = await api("GET", `/api/v1/transcripts/${id}/recipients`);
    const select = $("teammate");
    select.replaceChildren(...people.filter((p) => !p.shared).map((p) => {
      const o = document.createElement("option"); o.value = p.user_id; o.textContent = p.email; o.dataset.key = p.public_key; return o;
    }));
    $("teammate-share").disabled = !select.options.length;
    $("teammate-none").classList.toggle("hidden", people.length > 0);
    $("teammates").replaceChildren(...people.filter((p) => p.shared).map((p) => row(t("Shared with {email}", { email: p.email }), t("Stop sharing"), async () => {
      try { await api("DELETE", `/api/v1/transcripts/${id}/grants/${p.user_id}`); await teammates(); } catch (err) { fail(err); }
    })));
  }

  $("teammate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const option = $("teammate").selectedOptions[0];
    if (!option) return;
    try {
      // Sealed to their public key, bound to them and this transcript (their uid in the header).
      const envelope = await sc.sealToPublicKey(sc.b64uDecode(option.dataset.key), tk, option.value, id);
      await api("PUT", `/api/v1/transcripts/${id}/grants/${option.value}`, { key_envelope: envelope });
      status.className = "ok"; status.textContent = t("Shared with {email}.", { email: option.textContent });
      await teammates();
    } catch (err) { fail(err); }
  });

  links().catch(fail);
  teammates().catch(fail);
  return { owner };
}
