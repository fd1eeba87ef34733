#include "CReckerSystemd.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
/* No CODE_FILE/CODE_LINE/CODE_FUNC of this shim on every entry: they name the build
   machine's path, not the daemon's code (make systemd-test saw them). */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

int recker_journal_send(int priority, const char *identifier, const char *message,
                        const char *const *fields, size_t nfields) {
    struct iovec iov[64];
    char prio[32], ident[256];
    size_t n = 0;
    size_t mlen = strlen(message) + sizeof("MESSAGE=");
    char *msg = malloc(mlen);
    if (!msg) return -1;
    snprintf(msg, mlen, "MESSAGE=%s", message);
    snprintf(prio, sizeof prio, "PRIORITY=%d", priority);
    snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", identifier);
    iov[n].iov_base = msg; iov[n].iov_len = strlen(msg); n++;
    iov[n].iov_base = prio; iov[n].iov_len = strlen(prio); n++;
    iov[n].iov_base = ident; iov[n].iov_len = strlen(ident); n++;
    for (size_t i = 0; i < nfields && n < 64; i++) {
        iov[n].iov_base = (void *)fields[i];
        iov[n].iov_len = strlen(fields[i]);
        n++;
    }
    int rc = sd_journal_sendv(iov, (int)n);
    free(msg);
    return rc;
}

uint64_t recker_watchdog_usec(void) {
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
