"""The command side, one module per resource; `Mailroom` composes them."""
