/** Follow one run: poll its events incrementally (?after=SEQ) and its row, until it has finished. */
import { useEffect, useRef, useState } from "react";
import { ApiError, api } from "../api";
import { applyAnswer, emptyFeed, isFinished, isTerminal, type Run, type RunEventsAnswer, type RunFeed } from "./runEvents";

export const POLL_MS = 1500;
/** Pages of events fetched back to back in one tick (a long finished run has many). */
const PAGES_PER_TICK = 5;
/** The row changes without events too (heartbeat): refresh it at least every this many ticks. */
const ROW_EVERY_TICKS = 5;

export function useRunFeed(runId: number) {
  const [run, setRun] = useState<Run | null>(null);
  const [feed, setFeed] = useState<RunFeed>(emptyFeed);
  const [error, setError] = useState<unknown>(null);
  const [polling, setPolling] = useState(true);
  const runRef = useRef<Run | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    let feed = emptyFeed();
    let ticksSinceRow = ROW_EVERY_TICKS;
    runRef.current = null;
    setRun(null);
    setFeed(feed);
    setError(null);
    setPolling(true);

    const tick = async () => {
      let delay = POLL_MS;
      try {
        const before = feed.after;
        for (let page = 0; page < PAGES_PER_TICK; page++) {
          const answer = await api.get<RunEventsAnswer>(`runs/${runId}/events/`, { after: feed.after });
          if (stopped) return;
          feed = applyAnswer(feed, answer);
          if (!answer.has_more) break;
        }
        setFeed(feed);
        const finished = isFinished(feed);
        ticksSinceRow++;
        if (feed.after !== before || ticksSinceRow >= ROW_EVERY_TICKS || (finished && !isTerminal(runRef.current?.state))) {
          const row = await api.get<Run>(`runs/${runId}/`);
          if (stopped) return;
          runRef.current = row;
          setRun(row);
          ticksSinceRow = 0;
        }
        setError(null);
        if (finished) {
          setPolling(false);
          return;
        }
        if (!feed.caughtUp) delay = 0;
      } catch (err) {
        if (stopped) return;
        setError(err);
        if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
          setPolling(false);
          return;
        }
        delay = POLL_MS * 3; // the server or the network is down: keep trying, more slowly
      }
      if (!stopped) timer = window.setTimeout(() => void tick(), delay);
    };
    void tick();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [runId]);

  /** A row the page got otherwise (the cancel answer). */
  const replaceRun = (row: Run) => {
    runRef.current = row;
    setRun(row);
  };

  return { run, feed, error, polling, replaceRun };
}
