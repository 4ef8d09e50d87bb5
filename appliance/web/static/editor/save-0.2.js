// Saving: operations queue up and go out in one batch 800 ms after the last change, one request in
// flight at a time, against the revision the editor last saw. A 409 stops saving until the person
// chooses (reload, or keep mine = force); offline retries every few seconds; any other failure waits
// for the next change. No DOM here: the page passes callbacks (tests run it under `node --test`).
//
// backend.save(batch, baseRevision, {force, keepalive}) -> {revision, rebased_over, updated_at}, or
// throws an error with .status (409 conflict, 0 offline).

// The page's language (static/i18n-0.1.js); under node --test, the English with its values filled in.
const t = (message, values) => (globalThis.SottoI18n ? globalThis.SottoI18n.t(message, values)
  : message.replace(/\{([a-z_0-9]+)\}/g, (whole, name) => (values && name in values ? String(values[name]) : whole)));

export const SAVE_DELAY_MS = 800;
const OFFLINE_RETRY_MS = 5000;

const at = (iso) => new Date(iso).toLocaleTimeString(globalThis.SottoI18n ? globalThis.SottoI18n.lang : [], { hour: "2-digit", minute: "2-digit", timeZone: "UTC" });

export class Saver {
  // model: reads and writes .revision; show(text, cls); conflictShown(message | null)
  constructor({ backend, model, show = () => {}, conflictShown = () => {}, delay = SAVE_DELAY_MS, retry = OFFLINE_RETRY_MS }) {
    Object.assign(this, { backend, model, show, conflictShown, delay, retry });
    this.pending = []; this.inFlight = false; this.timer = null; this.conflict = false; this.failed = false;
  }

  get unsaved() { return this.pending.length > 0 || this.inFlight; }

  queue(ops) {
    if (!ops.length) return;
    this.pending.push(...ops);
    this.failed = false;
    this.show(t("Unsaved changes"));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.delay);
  }

  drop() { this.pending = []; clearTimeout(this.timer); }

  async flush({ force = false, keepalive = false } = {}) {
    clearTimeout(this.timer);
    if (this.inFlight || !this.pending.length || (this.conflict && !force)) return;
    this.inFlight = true;
    const batch = this.pending; this.pending = [];
    let retrying = false;
    this.show(t("Saving…"));
    try {
      const result = await this.backend.save(batch, this.model.revision, { force, keepalive });
      this.model.revision = result.revision;
      this.conflict = false; this.conflictShown(null);
      this.show(result.rebased_over.length ? t("Saved (merged with another edit) {time}", { time: at(result.updated_at) }) : t("Saved {time}", { time: at(result.updated_at) }));
    } catch (err) {
      this.pending = batch.concat(this.pending);
      if (err.status === 409) {
        this.conflict = true;
        this.show("Conflict", "conflict");
        this.conflictShown(err.message);
      } else if (err.status === 0) {
        this.show(t("Offline (retrying)"), "failed");
        this.timer = setTimeout(() => this.flush(), this.retry);
        retrying = true;
      } else {
        this.failed = true;
        this.show(t("Save failed: {reason}", { reason: err.message }), "failed");
      }
    } finally {
      this.inFlight = false;
      if (this.pending.length && !this.conflict && !this.failed && !retrying) this.timer = setTimeout(() => this.flush(), this.delay);
    }
  }

  // Wait until everything is saved (before an export or a structural change); throws if it cannot be.
  async settle() {
    for (let i = 0; i < 100 && this.unsaved; i++) {
      if (this.conflict || this.failed) throw new Error(t("Your edits are not saved yet."));
      if (!this.inFlight) await this.flush(); else await new Promise((r) => setTimeout(r, 100));
    }
  }

  // Save these operations now, after everything queued before them; true when saved.
  async now(ops) {
    await this.settle();
    this.pending.push(...ops);
    await this.flush();
    return !(this.conflict || this.failed || this.pending.length);
  }
}
