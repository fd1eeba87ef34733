#ifndef CRECKERSYSTEMD_H
#define CRECKERSYSTEMD_H

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-daemon.h>

/* Sends one journal entry: MESSAGE, PRIORITY and SYSLOG_IDENTIFIER plus `nfields` more
   "KEY=value" fields (sd_journal_send is variadic; this builds the iovec for sd_journal_sendv). */
int recker_journal_send(int priority, const char *identifier, const char *message,
                        const char *const *fields, size_t nfields);

/* sd_watchdog_enabled without its out-parameter dance: the interval in µs, or 0. */
uint64_t recker_watchdog_usec(void);

#endif
