/*
 * popauth -import: read every record of a Berkeley DB hash file (what a
 * qpopper linked against libdb's ndbm emulation wrote as BASE.db).
 *
 * A C shim rather than Rust declarations of libdb's structs: DB and DBC
 * are called through function pointers that sit inside `struct __db` /
 * `struct __dbc`, among dozens of other members whose order and size
 * change between libdb releases. Compiled against the installed <db.h>,
 * the compiler lays them out; Rust sees only this one plain function.
 */
#include <stddef.h>
#include <string.h>
#include <db.h>

/* Called once per record; non-zero stops the walk. */
typedef int (*popauth_bdb_record_fn)(void *ctx, const void *key, size_t key_len,
                                     const void *value, size_t value_len);

/* Returned when the callback asked to stop (not a libdb error number). */
#define POPAUTH_BDB_STOPPED (-1)

/*
 * Opens `path` read-only as a DB_HASH database (no environment, no
 * locking region, nothing created) and calls `each` for every record, in
 * libdb's order. Returns 0, POPAUTH_BDB_STOPPED, or a libdb/errno code
 * (for db_strerror).
 */
int popauth_bdb_each(const char *path, popauth_bdb_record_fn each, void *ctx)
{
    DB *db = NULL;
    DBC *cur = NULL;
    DBT key, value;
    int rc, rc2;

    rc = db_create(&db, NULL, 0);
    if (rc != 0)
        return rc;
    /* No error messages on stderr: the caller reports db_strerror(rc). */
    db->set_errfile(db, NULL);
    db->set_errcall(db, NULL);
    rc = db->open(db, NULL, path, NULL, DB_HASH, DB_RDONLY, 0);
    if (rc != 0) {
        db->close(db, 0);
        return rc;
    }
    rc = db->cursor(db, NULL, &cur, 0);
    if (rc == 0) {
        memset(&key, 0, sizeof key);
        memset(&value, 0, sizeof value);
        while ((rc = cur->get(cur, &key, &value, DB_NEXT)) == 0) {
            if (each(ctx, key.data, key.size, value.data, value.size) != 0) {
                rc = POPAUTH_BDB_STOPPED;
                break;
            }
        }
        if (rc == DB_NOTFOUND)
            rc = 0;
        rc2 = cur->close(cur);
        if (rc == 0)
            rc = rc2;
    }
    rc2 = db->close(db, 0);
    if (rc == 0)
        rc = rc2;
    return rc;
}
