"""Fixtures shared by all test packages."""

from tests.dovecot_fixture import dovecot  # noqa: F401
