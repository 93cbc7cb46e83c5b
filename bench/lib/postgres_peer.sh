# Shared by the PostgreSQL benchmarks: the server is $SLUICE_TEST_POSTGRES_URL, or a throwaway
# one from scripts/peers, which `stop_postgres_peer` stops again (and only then).
use_postgres_peer() { # REPO: sets URL
    started_postgres_peer=0
    if [ -z "${SLUICE_TEST_POSTGRES_URL:-}" ]; then
        eval "$("$1/scripts/peers" start postgres)"
        started_postgres_peer=1
    fi
    URL="$SLUICE_TEST_POSTGRES_URL"
}
stop_postgres_peer() { # REPO
    if [ "${started_postgres_peer:-0}" = 1 ]; then "$1/scripts/peers" stop postgres; fi
    true
}
