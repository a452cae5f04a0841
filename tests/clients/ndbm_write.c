/*
 * Writes a qpopper 2.53 pop.auth the way 2.53's popauth did when linked
 * with gdbm's ndbm compatibility layer (-lgdbm_compat -lgdbm):
 * dbm_open(BASE) + dbm_store, key = name + NUL, value = secret XOR 0xFF
 * + NUL (qpopper.md §5.2-5.3). Reads "name:secret" lines on stdin.
 *
 *   ndbm_write BASE < records      (makes BASE.dir and BASE.pag, 0600)
 */
#include <fcntl.h>
#include <ndbm.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char line[4096];
    DBM *db;

    if (argc != 2) {
        fprintf(stderr, "usage: ndbm_write BASE < name:secret lines\n");
        return 2;
    }
    db = dbm_open(argv[1], O_RDWR | O_CREAT, 0600);
    if (db == NULL) {
        perror("dbm_open");
        return 1;
    }
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *colon = strchr(line, ':');
        size_t n;
        datum key, value;

        line[strcspn(line, "\n")] = '\0';
        if (colon == NULL)
            continue;
        *colon = '\0';
        for (char *p = colon + 1; *p != '\0'; p++)
            *p = (char)(*p ^ 0xff);
        n = strlen(colon + 1);
        key.dptr = line;
        key.dsize = (int)strlen(line) + 1;
        value.dptr = colon + 1;
        value.dsize = (int)n + 1;
        if (dbm_store(db, key, value, DBM_REPLACE) != 0) {
            fprintf(stderr, "dbm_store failed\n");
            return 1;
        }
    }
    dbm_close(db);
    return 0;
}
