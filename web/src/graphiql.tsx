import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { explorerPlugin } from "@graphiql/plugin-explorer";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import "graphiql/graphiql.css";
import "@graphiql/plugin-explorer/dist/style.css";
import { TOKEN_KEY } from "./session";

// GraphiQL from this bundle (no CDN): works on air-gapped servers under a strict CSP.
const wsScheme = window.location.protocol === "https:" ? "wss:" : "ws:";
const token = sessionStorage.getItem(TOKEN_KEY);
const fetcher = createGraphiQLFetcher({
  url: "/graphql",
  subscriptionUrl: `${wsScheme}//${window.location.host}/graphql`,
  wsConnectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
});
const explorer = explorerPlugin();
const defaultHeaders = JSON.stringify({ Authorization: `Bearer ${token ?? "<your API token>"}` }, null, 2);

createRoot(document.getElementById("graphiql")!).render(
  <GraphiQL
    fetcher={fetcher}
    plugins={[explorer]}
    defaultHeaders={defaultHeaders}
    shouldPersistHeaders={false}
    defaultQuery={"# Put your API token in the Headers tab below, then run:\n{\n  me {\n    role\n    agent { name }\n  }\n}\n"}
  />,
);
