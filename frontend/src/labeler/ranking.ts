/**
 * The ranking state of the labeler workspace, as a pure reducer (no React, no DOM).
 *
 * One comparison shows K completions, at positions 0..K-1 (labelled A, B, C... on screen). Each
 * completion gets a mark: a rank 1..K (1 is best; equal ranks tie; gaps are allowed) or "F"
 * (nonsense / off-task) instead of a rank. A project that ranks per criterion keeps one order per
 * criterion, all on the same screen; `active` says which one the keys and buttons change.
 *
 * Every change of a mark pushes a snapshot on `history`, so `undo` steps back one change at a time,
 * wherever it was (also across criteria: it returns to the criterion and completion it changed).
 */

export type Mark = number | "F" | null;

/** One order: a mark per completion, and the last rank given (what `tie` repeats). */
export type Order = { marks: Mark[]; last: number | null };

type Snapshot = { orders: Order[]; active: number; selected: number };

export type RankingState = {
  k: number;
  /** Criterion ids, one order each; null: the project ranks overall (one order). */
  criteria: number[] | null;
  orders: Order[];
  /** Index into `orders` of the order the keys and buttons change. */
  active: number;
  /** Position of the selected completion. */
  selected: number;
  history: Snapshot[];
};

export type RankingAction =
  | { type: "select"; index: number }
  | { type: "move"; delta: number }
  | { type: "criterion"; index: number }
  | { type: "cycleCriterion"; delta: number }
  /** Give completion `index` (default: the selected one) rank `rank`. `advance` moves the selection on. */
  | { type: "rank"; rank: number; index?: number; advance?: boolean }
  /** Toggle the F mark of completion `index` (default: the selected one). */
  | { type: "fail"; index?: number; advance?: boolean }
  /** Give completion `index` the same rank as the last rank given (a tie). */
  | { type: "tie"; index?: number; advance?: boolean }
  | { type: "clear"; index?: number }
  | { type: "clearAll" }
  | { type: "undo" };

/** Most history kept: far more than one comparison needs. */
const HISTORY_LIMIT = 200;

export const MAX_K = 9;

export function letter(index: number): string {
  return String.fromCharCode(65 + index);
}

/** A mark in words, as the status line and screen readers say it. */
export function markLabel(mark: Mark): string {
  if (mark === null) return "not ranked";
  return mark === "F" ? "F (nonsense / off-task)" : `rank ${mark}`;
}

export function emptyOrder(k: number): Order {
  return { marks: Array<Mark>(k).fill(null), last: null };
}

export function initRanking(k: number, criteria: number[] | null = null): RankingState {
  const count = criteria ? criteria.length : 1;
  return {
    k,
    criteria,
    orders: Array.from({ length: Math.max(count, 1) }, () => emptyOrder(k)),
    active: 0,
    selected: 0,
    history: [],
  };
}

function clampIndex(state: RankingState, index: number | undefined): number | null {
  const i = index ?? state.selected;
  return Number.isInteger(i) && i >= 0 && i < state.k ? i : null;
}

function wrap(value: number, size: number): number {
  return ((value % size) + size) % size;
}

export function isOrderComplete(order: Order): boolean {
  return order.marks.every((mark) => mark !== null);
}

/** Every completion of every order has a rank or an F mark. */
export function isComplete(state: RankingState): boolean {
  return state.orders.every(isOrderComplete);
}

/** The unmarked completions, per order: [{order, index}]. */
export function missing(state: RankingState): { order: number; index: number }[] {
  const out: { order: number; index: number }[] = [];
  state.orders.forEach((order, o) =>
    order.marks.forEach((mark, index) => {
      if (mark === null) out.push({ order: o, index });
    }),
  );
  return out;
}

/** The rank `tie` would give: the last rank given in the active order, else the nearest rank
 * before the selected completion, else the nearest after it; null when nothing is ranked yet. */
export function tieRank(state: RankingState, index: number = state.selected): number | null {
  const order = state.orders[state.active];
  if (order.last !== null) return order.last;
  for (let i = index - 1; i >= 0; i--) {
    const mark = order.marks[i];
    if (typeof mark === "number") return mark;
  }
  for (let i = index + 1; i < state.k; i++) {
    const mark = order.marks[i];
    if (typeof mark === "number") return mark;
  }
  return null;
}

/** Set one mark in the active order, recording history; unchanged state when nothing changes. */
function setMark(state: RankingState, index: number, mark: Mark, advance: boolean): RankingState {
  const order = state.orders[state.active];
  const last = typeof mark === "number" ? mark : order.last;
  if (order.marks[index] === mark && order.last === last) {
    return advance ? moveOn({ ...state, selected: index }, false) : { ...state, selected: index };
  }
  const marks = order.marks.slice();
  marks[index] = mark;
  const orders = state.orders.slice();
  orders[state.active] = { marks, last };
  const history = [...state.history, { orders: state.orders, active: state.active, selected: state.selected }];
  if (history.length > HISTORY_LIMIT) history.shift();
  const next: RankingState = { ...state, orders, history, selected: index };
  return advance ? moveOn(next, !isOrderComplete(order)) : next;
}

/**
 * After a mark given from the keyboard: select the next unmarked completion of the active order
 * (after the current one, wrapping). When the mark just completed the order, go on to the next
 * criterion that still has an unmarked completion. Otherwise stay.
 */
function moveOn(state: RankingState, wasIncomplete: boolean): RankingState {
  const { marks } = state.orders[state.active];
  for (let step = 1; step <= state.k; step++) {
    const i = wrap(state.selected + step, state.k);
    if (marks[i] === null) return { ...state, selected: i };
  }
  if (!wasIncomplete) return state;
  const n = state.orders.length;
  for (let step = 1; step < n; step++) {
    const o = wrap(state.active + step, n);
    const i = state.orders[o].marks.indexOf(null);
    if (i >= 0) return { ...state, active: o, selected: i };
  }
  return state;
}

export function rankingReducer(state: RankingState, action: RankingAction): RankingState {
  switch (action.type) {
    case "select": {
      const i = clampIndex(state, action.index);
      return i === null || i === state.selected ? state : { ...state, selected: i };
    }
    case "move":
      return { ...state, selected: wrap(state.selected + action.delta, state.k) };
    case "criterion": {
      const o = action.index;
      if (!Number.isInteger(o) || o < 0 || o >= state.orders.length || o === state.active) return state;
      return { ...state, active: o };
    }
    case "cycleCriterion":
      if (state.orders.length < 2) return state;
      return { ...state, active: wrap(state.active + action.delta, state.orders.length) };
    case "rank": {
      const i = clampIndex(state, action.index);
      if (i === null || !Number.isInteger(action.rank) || action.rank < 1 || action.rank > state.k) return state;
      return setMark(state, i, action.rank, action.advance ?? false);
    }
    case "fail": {
      const i = clampIndex(state, action.index);
      if (i === null) return state;
      const isF = state.orders[state.active].marks[i] === "F";
      return setMark(state, i, isF ? null : "F", !isF && (action.advance ?? false));
    }
    case "tie": {
      const i = clampIndex(state, action.index);
      if (i === null) return state;
      const rank = tieRank(state, i);
      return rank === null ? state : setMark(state, i, rank, action.advance ?? false);
    }
    case "clear": {
      const i = clampIndex(state, action.index);
      return i === null ? state : setMark(state, i, null, false);
    }
    case "clearAll": {
      const order = state.orders[state.active];
      if (order.marks.every((mark) => mark === null) && order.last === null) return state;
      const orders = state.orders.slice();
      orders[state.active] = emptyOrder(state.k);
      const history = [...state.history, { orders: state.orders, active: state.active, selected: state.selected }];
      return { ...state, orders, history, selected: 0 };
    }
    case "undo": {
      const previous = state.history[state.history.length - 1];
      if (!previous) return state;
      return { ...state, ...previous, history: state.history.slice(0, -1) };
    }
  }
}

/** The completions of an order arranged for the drop-zone board: per rank 1..K, F, and unmarked. */
export function board(order: Order, k: number): { byRank: number[][]; failed: number[]; unmarked: number[] } {
  const byRank: number[][] = Array.from({ length: k }, () => []);
  const failed: number[] = [];
  const unmarked: number[] = [];
  order.marks.forEach((mark, i) => {
    if (mark === "F") failed.push(i);
    else if (mark === null) unmarked.push(i);
    else byRank[mark - 1]?.push(i);
  });
  return { byRank, failed, unmarked };
}

export type OrderPayload = { ranks: Record<string, number>; failed: number[] };

export type SubmitPayload =
  | (OrderPayload & { comment: string; time_spent_ms: number })
  | { criteria: Record<string, OrderPayload>; comment: string; time_spent_ms: number };

export function orderPayload(order: Order, completionIds: number[]): OrderPayload {
  const ranks: Record<string, number> = {};
  const failed: number[] = [];
  order.marks.forEach((mark, i) => {
    const id = completionIds[i];
    if (mark === "F") failed.push(id);
    else if (mark !== null) ranks[String(id)] = mark;
  });
  return { ranks, failed };
}

/** The body of POST /api/assignments/{id}/ranking/. Throws when a completion has no mark. */
export function buildPayload(
  state: RankingState,
  completionIds: number[],
  { comment = "", timeSpentMs }: { comment?: string; timeSpentMs: number },
): SubmitPayload {
  if (completionIds.length !== state.k) throw new Error(`expected ${state.k} completion ids, got ${completionIds.length}`);
  if (!isComplete(state)) throw new Error("every completion needs a rank or an F mark before submitting");
  const time_spent_ms = Math.max(0, Math.min(86_400_000, Math.round(timeSpentMs)));
  if (state.criteria === null) return { ...orderPayload(state.orders[0], completionIds), comment, time_spent_ms };
  const criteria: Record<string, OrderPayload> = {};
  state.criteria.forEach((id, o) => {
    criteria[String(id)] = orderPayload(state.orders[o], completionIds);
  });
  return { criteria, comment, time_spent_ms };
}

/** A short sentence saying what is left before a submit, or "" when the ranking is complete. */
export function missingSummary(state: RankingState, criterionNames: string[] = []): string {
  const gaps = missing(state);
  if (gaps.length === 0) return "";
  const byOrder = new Map<number, string[]>();
  for (const { order, index } of gaps) byOrder.set(order, [...(byOrder.get(order) ?? []), letter(index)]);
  const parts = [...byOrder].map(([o, letters]) => {
    const list = letters.join(", ");
    const where = state.criteria ? ` (${criterionNames[o] ?? `criterion ${o + 1}`})` : "";
    return `${list}${where}`;
  });
  const noun = gaps.length === 1 ? "completion still needs" : "completions still need";
  return `${gaps.length} ${noun} a rank or F: ${parts.join("; ")}.`;
}

/** What is kept across a reload (sessionStorage), per assignment. */
export type SavedRanking = { k: number; criteria: number[] | null; marks: Mark[][]; active: number; selected: number };

export function toSaved(state: RankingState): SavedRanking {
  return {
    k: state.k,
    criteria: state.criteria,
    marks: state.orders.map((order) => order.marks),
    active: state.active,
    selected: state.selected,
  };
}

/** A fresh state with the saved marks, when they fit this comparison; else a fresh empty state. */
export function fromSaved(k: number, criteria: number[] | null, saved: unknown): RankingState {
  const fresh = initRanking(k, criteria);
  if (!saved || typeof saved !== "object") return fresh;
  const s = saved as Partial<SavedRanking>;
  const sameCriteria = JSON.stringify(s.criteria ?? null) === JSON.stringify(criteria);
  if (s.k !== k || !sameCriteria || !Array.isArray(s.marks) || s.marks.length !== fresh.orders.length) return fresh;
  const valid = (mark: unknown): mark is Mark =>
    mark === null || mark === "F" || (typeof mark === "number" && Number.isInteger(mark) && mark >= 1 && mark <= k);
  if (!s.marks.every((marks) => Array.isArray(marks) && marks.length === k && marks.every(valid))) return fresh;
  const active = Number.isInteger(s.active) && s.active! >= 0 && s.active! < fresh.orders.length ? s.active! : 0;
  const selected = Number.isInteger(s.selected) && s.selected! >= 0 && s.selected! < k ? s.selected! : 0;
  return { ...fresh, orders: s.marks.map((marks) => ({ marks: marks.slice(), last: null })), active, selected };
}

// ---- keyboard ----

export type Command =
  | { type: "rank"; rank: number }
  | { type: "fail" }
  | { type: "tie" }
  | { type: "clear" }
  | { type: "undo" }
  | { type: "next" }
  | { type: "prev" }
  | { type: "submit" }
  | { type: "skip" }
  | { type: "comment" }
  | { type: "nextCriterion" }
  | { type: "prevCriterion" }
  | { type: "instructions" }
  | { type: "help" }
  | { type: "escape" };

export type KeyLike = { key: string; ctrlKey?: boolean; metaKey?: boolean; altKey?: boolean };

/** The workspace's key map (shown in the help overlay): which command a key press means, or null. */
export function commandForKey(event: KeyLike, k: number): Command | null {
  const { key } = event;
  if (event.ctrlKey || event.metaKey) {
    return !event.altKey && key.toLowerCase() === "z" ? { type: "undo" } : null;
  }
  if (event.altKey) return null;
  if (/^[1-9]$/.test(key)) {
    const rank = Number(key);
    return rank <= k ? { type: "rank", rank } : null;
  }
  switch (key) {
    case "ArrowRight":
    case "j":
    case "J":
      return { type: "next" };
    case "ArrowLeft":
    case "k":
    case "K":
      return { type: "prev" };
    case "f":
    case "F":
      return { type: "fail" };
    case "t":
    case "T":
      return { type: "tie" };
    case "x":
    case "X":
    case "0":
    case "Backspace":
    case "Delete":
      return { type: "clear" };
    case "u":
    case "U":
      return { type: "undo" };
    case "Enter":
      return { type: "submit" };
    case "s":
    case "S":
      return { type: "skip" };
    case "c":
    case "C":
      return { type: "comment" };
    case "]":
      return { type: "nextCriterion" };
    case "[":
      return { type: "prevCriterion" };
    case "i":
    case "I":
      return { type: "instructions" };
    case "?":
      return { type: "help" };
    case "Escape":
      return { type: "escape" };
    default:
      return null;
  }
}

/** The help overlay's table, kept beside the key map it describes. */
export const KEY_HELP: { keys: string[]; action: string }[] = [
  { keys: ["1", "…", "K"], action: "Give the selected completion that rank (1 is best), then select the next unranked one" },
  { keys: ["t"], action: "Tie: give the selected completion the rank you gave last" },
  { keys: ["f"], action: "Mark the selected completion F (nonsense / off-task) instead of a rank; again to unmark" },
  { keys: ["x", "0", "⌫"], action: "Clear the selected completion's mark" },
  { keys: ["←", "→"], action: "Select the previous / next completion (also k / j)" },
  { keys: ["u", "Ctrl+Z"], action: "Undo the last change" },
  { keys: ["[", "]"], action: "Previous / next criterion (per-criterion projects)" },
  { keys: ["Enter"], action: "Submit — once every completion has a rank or F" },
  { keys: ["s", "s"], action: "Skip this comparison (press s twice)" },
  { keys: ["c"], action: "Write a comment (Esc returns to ranking, Ctrl+Enter submits)" },
  { keys: ["i"], action: "Show / hide the instructions panel" },
  { keys: ["?"], action: "Show / hide this help" },
  { keys: ["Esc"], action: "Close this help" },
];
