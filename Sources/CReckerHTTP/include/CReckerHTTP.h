#ifndef CRECKERHTTP_H
#define CRECKERHTTP_H

#include <stddef.h>
#include <stdint.h>

/* Typed wrappers over Debian's libhttp-parser (Node's long-serving HTTP/1 parser): the
 * only C in reckerd that touches it. Swift sees an opaque parser, one event callback and
 * plain accessors, never the parser's bitfields. */

typedef struct recker_http recker_http;

enum recker_http_event {
    RECKER_HTTP_MESSAGE_BEGIN = 0,
    RECKER_HTTP_URL = 1,
    RECKER_HTTP_HEADER_FIELD = 2,
    RECKER_HTTP_HEADER_VALUE = 3,
    RECKER_HTTP_HEADERS_COMPLETE = 4,
    RECKER_HTTP_BODY = 5,
    RECKER_HTTP_MESSAGE_COMPLETE = 6,
};

/* Called for every parser event; `at`/`length` are set for URL, header and body pieces.
 * A non-zero return fails the parse (RECKER_HTTP_ERRNO_CALLBACK). */
typedef int (*recker_http_callback)(void *context, int event, const char *at, size_t length);

/* A parser of requests; NULL when out of memory. */
recker_http *recker_http_new(void *context, recker_http_callback callback);
void recker_http_free(recker_http *h);
/* Starts over for a new connection's stream. */
void recker_http_reset(recker_http *h);
/* Parses up to `length` bytes; returns how many were taken. Fewer than `length` with
 * recker_http_errno() == RECKER_HTTP_ERRNO_PAUSED means the caller paused in a callback. */
size_t recker_http_execute(recker_http *h, const char *data, size_t length);
void recker_http_pause(recker_http *h, int paused);

int recker_http_errno(const recker_http *h);
const char *recker_http_errno_name(int err);
const char *recker_http_errno_description(int err);
extern const int RECKER_HTTP_ERRNO_OK;
extern const int RECKER_HTTP_ERRNO_PAUSED;

/* What the parser knows of the current message (valid from HEADERS_COMPLETE on). */
const char *recker_http_method(const recker_http *h);
unsigned recker_http_major(const recker_http *h);
unsigned recker_http_minor(const recker_http *h);
int recker_http_keep_alive(const recker_http *h);
int recker_http_chunked(const recker_http *h);
int recker_http_has_content_length(const recker_http *h);
uint64_t recker_http_content_length(const recker_http *h);
int recker_http_upgrade(const recker_http *h);

#endif
