"""HTTP sidebar sources (DESIGN 7): URL templates, the records an endpoint answers, which hosts may
be asked. The fetcher itself is adapters/sidebar_http.py."""
