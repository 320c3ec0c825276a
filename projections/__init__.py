"""Read models built from the event log, and the queries over them."""
