import type { CodegenConfig } from "@graphql-codegen/cli";

// Typed from the contract the server serves (api/contract.graphql): a contract change that
// breaks an operation of the UI fails `tsc --noEmit`.
const config: CodegenConfig = {
  schema: "../api/contract.graphql",
  documents: ["src/**/*.ts", "src/**/*.tsx", "!src/gql/**"],
  ignoreNoDocuments: true,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { UUID: "string", DateTime: "string", Date: "string", JSON: "unknown" },
      },
    },
  },
  silent: true,
};
export default config;
