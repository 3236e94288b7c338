// Loading one API answer for a page: the answer, the API's error, and a way
// to load it again.
import { useCallback, useEffect, useState } from "react";
import { ApiError } from "./client";

export function useLoad<T>(load: () => Promise<T>): { data: T | null; error: ApiError | null; reload(): void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const reload = useCallback(() => {
    load().then(
      (d) => {
        setData(d);
        setError(null);
      },
      (e) => setError(e instanceof ApiError ? e : new ApiError(0, String(e))),
    );
  }, [load]);
  useEffect(reload, [reload]);
  return { data, error, reload };
}
