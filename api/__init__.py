"""The served side: FastAPI app, GraphQL schema, auth, CLI and the composition root."""
