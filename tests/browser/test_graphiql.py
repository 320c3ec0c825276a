"""GraphiQL at /graphql comes from the server's own bundle: with every other host blocked it
still shows the editor and runs a query, under the strict CSP, with no CSP violation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from api.web import CSP
from tests.browser.conftest import only_server, watch_console
from tests.e2e.conftest import Server, cli_token


def test_graphiql_is_served_locally_under_the_strict_csp(start_server: Callable[..., Server], browser: Any) -> None:
    server = start_server()
    admin = cli_token(server.env, server.dir, "ADMIN", "admin")
    page_response = httpx.get(f"{server.url}/graphql", headers={"Accept": "text/html"})
    assert page_response.status_code == 200
    assert page_response.headers["content-security-policy"] == CSP
    assert "unpkg" not in page_response.text and "<script>" not in page_response.text
    # The API itself still answers GET-with-query and POST.
    api_get = httpx.get(f"{server.url}/graphql", params={"query": "{ me { role } }"},
                        headers={"Authorization": f"Bearer {admin}"})
    assert api_get.json() == {"data": {"me": {"role": "ADMIN"}}}

    context = browser.new_context()
    page = context.new_page()
    blocked = only_server(page, server.url)
    problems = watch_console(page)
    page.goto(f"{server.url}/graphql")
    page.locator(".graphiql-container").wait_for()
    page.locator(".graphiql-query-editor .CodeMirror").first.wait_for()
    # Run a query with the token in the headers editor.
    page.evaluate("""token => {
        const cm = document.querySelectorAll('.graphiql-editor-tool .CodeMirror, .graphiql-editor-tools .CodeMirror');
        for (const el of cm) { if (el.CodeMirror && el.CodeMirror.getValue().includes('Authorization')) {
            el.CodeMirror.setValue(JSON.stringify({Authorization: 'Bearer ' + token})); } }
    }""", admin)
    page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    page.locator(".result-window").get_by_text('"ADMIN"').wait_for(timeout=10000)
    context.close()
    assert blocked == []
    assert not [p for p in problems if "Content Security Policy" in p], problems
