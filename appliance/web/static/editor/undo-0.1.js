// Undo and redo as whole states: each step keeps the state before and after it (model.snapshot), so
// undoing restores the text, speakers and their names, notes, timing and title together, whatever the
// step was. No DOM here (tests run it under `node --test`).

export const UNDO_LIMIT = 200;

const take = (list, item) => { const i = list.lastIndexOf(item); if (i >= 0) list.splice(i, 1); };

export class History {
  constructor(limit = UNDO_LIMIT) { this.limit = limit; this.past = []; this.future = []; }

  get canUndo() { return this.past.length > 0; }
  get canRedo() { return this.future.length > 0; }

  record(before, after) {
    this.past.push({ before, after });
    if (this.past.length > this.limit) this.past.shift();
    this.future.length = 0;
  }

  // The step to undo goes from its `after` back to its `before`; it moves to the redo side only once
  // the caller restored that state (undone), so a restore that failed leaves both sides as they were.
  undo() { const step = this.past[this.past.length - 1]; return step ? { step, from: step.after, to: step.before } : null; }
  redo() { const step = this.future[this.future.length - 1]; return step ? { step, from: step.before, to: step.after } : null; }
  undone(step) { take(this.past, step); this.future.push(step); }
  redone(step) { take(this.future, step); this.past.push(step); }

  // A restore that made new segments (the server numbers them) renames their sids in every kept state,
  // so later steps still find them.
  renumber(sids, freshen) {
    if (!sids.size) return;
    const fix = (state) => {
      if (state.segments.some((s) => sids.has(s.sid))) state.segments = state.segments.map((s) => (sids.has(s.sid) ? freshen(s, sids.get(s.sid)) : s));
    };
    for (const step of [...this.past, ...this.future]) { fix(step.before); fix(step.after); }
  }
}
