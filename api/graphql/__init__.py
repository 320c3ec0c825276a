"""The GraphQL API of the contract, one module per resource."""
