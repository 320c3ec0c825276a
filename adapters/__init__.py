"""Adapters: the code that talks to things outside the process (mail servers, ...)."""
