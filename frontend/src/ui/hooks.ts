/** Small React hooks the screens share: loading an API answer, debouncing a value, an element's width, a form's state. */
import { useCallback, useEffect, useLayoutEffect, useRef, useState, type RefObject } from "react";

/** Load with `load()` whenever `key` changes; `reload()` loads again. Stale answers are dropped. */
export function useLoad<T>(load: () => Promise<T>, key: string) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const reload = useCallback(() => {
    const mine = ++generation.current;
    setLoading(true);
    return loadRef
      .current()
      .then((value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(null);
      })
      .catch((err) => {
        if (mine === generation.current) setError(err);
      })
      .finally(() => {
        if (mine === generation.current) setLoading(false);
      });
  }, []);

  useEffect(() => {
    void reload();
  }, [key, reload]);

  return { data, error, loading, reload, setData };
}

/** `value`, once it has stopped changing for `ms` milliseconds. */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** The pixel width of an element, kept up to date, so that SVG plots draw at 1:1 (text stays legible). */
export function useWidth<T extends HTMLElement>(fallback: number): [RefObject<T | null>, number] {
  const ref = useRef<T | null>(null);
  const [width, setWidth] = useState(fallback);
  useLayoutEffect(() => {
    const element = ref.current;
    if (!element) return;
    const update = () => setWidth(Math.max(240, Math.floor(element.clientWidth)));
    update();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(update);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

/**
 * A form's field errors by key ("" for the general line): `clearError` when a field changes, `show`
 * puts errors up and focuses the first invalid control of `formRef`'s form.
 */
export function useFieldErrors() {
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [focusError, setFocusError] = useState(0);
  const formRef = useRef<HTMLFormElement>(null);
  useEffect(() => {
    if (focusError) formRef.current?.querySelector<HTMLElement>("[aria-invalid='true']")?.focus();
  }, [focusError]);
  const clearError = (key: string) =>
    setErrors((current) => {
      if (!(key in current)) return current;
      const { [key]: _dropped, ...rest } = current;
      return rest;
    });
  const show = (next: Record<string, string>) => {
    setErrors(next);
    setFocusError((n) => n + 1);
  };
  return { errors, setErrors, clearError, show, formRef };
}

/**
 * A form's values and its field errors: `set` changes a value and clears that field's error (or
 * `errorKey`'s), `show` puts errors up and focuses the first invalid control.
 */
export function useFormState<F extends Record<string, unknown>>(initial: F) {
  const [form, setForm] = useState<F>(initial);
  const { errors, setErrors, clearError, show, formRef } = useFieldErrors();
  const set = <K extends keyof F>(key: K, value: F[K], errorKey: string = String(key)) => {
    setForm((current) => ({ ...current, [key]: value }));
    clearError(errorKey);
  };
  return { form, setForm, errors, setErrors, set, show, formRef };
}
