"""HTTP sidebar sources (DESIGN 7): URL templates and the records an endpoint answers. The fetcher
is adapters/sidebar_http.py; which addresses it may reach is adapters/discovery/addresses.py."""
