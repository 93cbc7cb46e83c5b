#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro with a cast, which Swift cannot import.
static inline sqlite3_destructor_type sluice_sqlite_transient(void) { return SQLITE_TRANSIENT; }
static inline sqlite3_destructor_type sluice_sqlite_static(void) { return SQLITE_STATIC; }
