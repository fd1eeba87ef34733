#ifndef CRECKERCURL_H
#define CRECKERCURL_H

#include <curl/curl.h>
#include <sys/types.h>

/* Typed wrappers over libcurl's variadic calls, which Swift cannot call. One wrapper per
   argument kind; everything else in <curl/curl.h> is used from Swift directly. */

typedef size_t (*recker_data_callback)(char *buffer, size_t size, size_t nitems, void *userdata);
typedef curl_socket_t (*recker_opensocket_callback)(void *clientp, curlsocktype purpose, struct curl_sockaddr *address);
typedef int (*recker_closesocket_callback)(void *clientp, curl_socket_t item);

CURLcode recker_easy_setopt_long(CURL *easy, CURLoption option, long value);
CURLcode recker_easy_setopt_off(CURL *easy, CURLoption option, curl_off_t value);
CURLcode recker_easy_setopt_string(CURL *easy, CURLoption option, const char *value);
CURLcode recker_easy_setopt_pointer(CURL *easy, CURLoption option, void *value);
/// A share handle that holds a DNS cache (curl_share_setopt is variadic).
CURLSHcode recker_share_dns(CURLSH *share);
CURLcode recker_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value);
CURLcode recker_easy_setopt_data_callback(CURL *easy, CURLoption option, recker_data_callback cb);
CURLcode recker_easy_setopt_opensocket(CURL *easy, recker_opensocket_callback cb);
CURLcode recker_easy_setopt_closesocket(CURL *easy, recker_closesocket_callback cb);
CURLcode recker_easy_setopt_prereq(CURL *easy, curl_prereq_callback cb);
CURLcode recker_easy_setopt_seek(CURL *easy, curl_seek_callback cb);

CURLcode recker_easy_getinfo_long(CURL *easy, CURLINFO info, long *out);
CURLcode recker_easy_getinfo_off(CURL *easy, CURLINFO info, curl_off_t *out);
CURLcode recker_easy_getinfo_pointer(CURL *easy, CURLINFO info, void **out);
CURLcode recker_easy_getinfo_string(CURL *easy, CURLINFO info, const char **out);

CURLMcode recker_multi_setopt_long(CURLM *multi, CURLMoption option, long value);
CURLMcode recker_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value);
CURLMcode recker_multi_setopt_socket(CURLM *multi, curl_socket_callback cb);
CURLMcode recker_multi_setopt_timer(CURLM *multi, curl_multi_timer_callback cb);

/* CURLMsg.data is a union. */
CURLcode recker_msg_result(const CURLMsg *msg);

/* Creates a close-on-exec socket for libcurl's open-socket callback; -1 on failure. */
curl_socket_t recker_open_socket(const struct curl_sockaddr *address);

/// Hands the heap's free memory back to the system (malloc_trim), after a busy spell.
void recker_trim_heap(void);

/* What kind of destination an address libcurl is about to connect to is, as bits:
   RECKER_DEST_LINK_LOCAL (169.254.0.0/16, fe80::/10: the cloud metadata services live
   there), RECKER_DEST_PRIVATE (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7),
   RECKER_DEST_LOOPBACK (127/8, ::1, and 0.0.0.0/8 and ::, which reach this host).
   IPv4 inside IPv6 (mapped, SIIT, NAT64 64:ff9b::/96) counts as that IPv4 address. The address in text goes to `text`. */
#define RECKER_DEST_LINK_LOCAL 1
#define RECKER_DEST_PRIVATE 2
#define RECKER_DEST_LOOPBACK 4
int recker_destination_class(const struct curl_sockaddr *address, char *text, size_t textlen);

/* Opens an unnamed, private file in `directory` (O_TMPFILE); -1 with errno on failure. */
int recker_open_tmpfile(const char *directory);

#endif
