import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";

export interface Clients {
  client: Client;
  ws: WsClient;
}

/** One urql client per signed-in token: HTTP for queries and mutations, graphql-transport-ws
 * (same /graphql path, token in connection_init) for subscriptions. A 401 signs out. */
export function makeClients(token: string, onUnauthorized: () => void): Clients {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const ws = createWsClient({
    url: `${scheme}//${window.location.host}/graphql`,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: true,
    retryAttempts: Infinity,
    // 4403: the token was refused (unknown, expired or revoked): back to sign-in, no retry.
    shouldRetry: (event) => !(event instanceof CloseEvent && event.code === 4403),
    on: {
      closed: (event) => {
        if (event instanceof CloseEvent && event.code === 4403) onUnauthorized();
      },
    },
    retryWait: async (retries) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** retries, 10000)));
    },
  });
  const client = new Client({
    url: "/graphql",
    preferGetMethod: false,
    requestPolicy: "cache-and-network",
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
    exchanges: [
      mapExchange({
        onError(error) {
          const status = (error.response as Response | undefined)?.status;
          const unauthenticated = error.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED");
          if (status === 401 || unauthenticated) onUnauthorized();
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          // graphql-ws sends this same payload again when it reconnects: a subscription with an
          // `afterPosition` variable resumes after the last change it delivered (nothing missed,
          // nothing twice).
          const variables: Record<string, unknown> = { ...(request.variables ?? {}) };
          const input = { ...request, query: request.query || "", variables };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, {
                next(result) {
                  if ("afterPosition" in variables && result.data) {
                    for (const value of Object.values(result.data)) {
                      const position = (value as { position?: unknown } | null)?.position;
                      if (typeof position === "number") variables.afterPosition = position;
                    }
                  }
                  sink.next(result as Parameters<typeof sink.next>[0]);
                },
                error: (e) => sink.error(e),
                complete: () => sink.complete(),
              });
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, ws };
}

/** Downloads an authenticated path (attachments, raw quarantined mail) with the bearer token
 * and opens it from a blob: URL. */
export async function openAuthenticated(path: string, token: string, filename?: string | null): Promise<void> {
  const response = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`download failed: HTTP ${response.status}`);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename || "download";
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
