#include "CReckerHTTP.h"
#include <http_parser.h>
#include <stdlib.h>

struct recker_http {
    http_parser parser;
    http_parser_settings settings;
    void *context;
    recker_http_callback callback;
};

const int RECKER_HTTP_ERRNO_OK = HPE_OK;
const int RECKER_HTTP_ERRNO_PAUSED = HPE_PAUSED;

static int notify(http_parser *p, int event) {
    recker_http *h = p->data;
    return h->callback(h->context, event, NULL, 0);
}

static int data(http_parser *p, int event, const char *at, size_t length) {
    recker_http *h = p->data;
    return h->callback(h->context, event, at, length);
}

static int on_message_begin(http_parser *p) { return notify(p, RECKER_HTTP_MESSAGE_BEGIN); }
static int on_url(http_parser *p, const char *at, size_t n) { return data(p, RECKER_HTTP_URL, at, n); }
static int on_header_field(http_parser *p, const char *at, size_t n) { return data(p, RECKER_HTTP_HEADER_FIELD, at, n); }
static int on_header_value(http_parser *p, const char *at, size_t n) { return data(p, RECKER_HTTP_HEADER_VALUE, at, n); }
static int on_headers_complete(http_parser *p) { return notify(p, RECKER_HTTP_HEADERS_COMPLETE); }
static int on_body(http_parser *p, const char *at, size_t n) { return data(p, RECKER_HTTP_BODY, at, n); }
static int on_message_complete(http_parser *p) { return notify(p, RECKER_HTTP_MESSAGE_COMPLETE); }

recker_http *recker_http_new(void *context, recker_http_callback callback) {
    recker_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    http_parser_settings_init(&h->settings);
    h->settings.on_message_begin = on_message_begin;
    h->settings.on_url = on_url;
    h->settings.on_header_field = on_header_field;
    h->settings.on_header_value = on_header_value;
    h->settings.on_headers_complete = on_headers_complete;
    h->settings.on_body = on_body;
    h->settings.on_message_complete = on_message_complete;
    h->context = context;
    h->callback = callback;
    recker_http_reset(h);
    return h;
}

void recker_http_free(recker_http *h) { free(h); }

void recker_http_reset(recker_http *h) {
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
}

size_t recker_http_execute(recker_http *h, const char *bytes, size_t length) {
    return http_parser_execute(&h->parser, &h->settings, bytes, length);
}

void recker_http_pause(recker_http *h, int paused) { http_parser_pause(&h->parser, paused); }

int recker_http_errno(const recker_http *h) { return (int)h->parser.http_errno; }
const char *recker_http_errno_name(int err) { return http_errno_name((enum http_errno)err); }
const char *recker_http_errno_description(int err) { return http_errno_description((enum http_errno)err); }

const char *recker_http_method(const recker_http *h) { return http_method_str((enum http_method)h->parser.method); }
unsigned recker_http_major(const recker_http *h) { return h->parser.http_major; }
unsigned recker_http_minor(const recker_http *h) { return h->parser.http_minor; }
int recker_http_keep_alive(const recker_http *h) { return http_should_keep_alive(&h->parser); }
int recker_http_chunked(const recker_http *h) { return (h->parser.flags & F_CHUNKED) != 0; }
int recker_http_has_content_length(const recker_http *h) { return (h->parser.flags & F_CONTENTLENGTH) != 0; }
uint64_t recker_http_content_length(const recker_http *h) { return h->parser.content_length; }
int recker_http_upgrade(const recker_http *h) { return h->parser.upgrade; }
