/** Who is signed in: the session cookie is the credential; /api/me/ says whose it is. */
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { ApiError, api, type Me } from "./api";

type Session = { me: Me | null; loading: boolean; signIn: (username: string, password: string) => Promise<void>; signOut: () => Promise<void> };

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);

  useEffect(() => {
    api
      .get<Me>("me/")
      .then(setMe)
      .catch((error) => {
        if (!(error instanceof ApiError && (error.status === 401 || error.status === 403))) console.error(error);
      })
      .finally(() => setLoading(false));
  }, []);

  const signIn = useCallback(async (username: string, password: string) => {
    await api.get("auth/csrf/");
    setMe(await api.post<Me>("auth/session/", { username, password }));
  }, []);

  const signOut = useCallback(async () => {
    await api.delete("auth/session/");
    setMe(null);
  }, []);

  return <SessionContext.Provider value={{ me, loading, signIn, signOut }}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}
