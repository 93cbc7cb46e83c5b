#!/usr/bin/env python3
"""PostgreSQL URLs for the dlt peers. Standard library only."""


def with_password(url: str) -> str:
    """postgresql:// with a password: dlt insists on one, and the benchmark's throwaway server
    trusts local users, so any will do."""
    url = url.replace("postgres://", "postgresql://", 1)
    scheme, rest = url.split("://", 1)
    userinfo, _, host = rest.rpartition("@")
    return url if not userinfo or ":" in userinfo else f"{scheme}://{userinfo}:unused@{host}"
