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
CURLcode recker_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value);
CURLcode recker_easy_setopt_data_callback(CURL *easy, CURLoption option, recker_data_callback cb);
CURLcode recker_easy_setopt_opensocket(CURL *easy, recker_opensocket_callback cb);
CURLcode recker_easy_setopt_closesocket(CURL *easy, recker_closesocket_callback cb);
CURLcode recker_easy_setopt_prereq(CURL *easy, curl_prereq_callback cb);

CURLcode recker_easy_getinfo_long(CURL *easy, CURLINFO info, long *out);
CURLcode recker_easy_getinfo_off(CURL *easy, CURLINFO info, curl_off_t *out);
CURLcode recker_easy_getinfo_pointer(CURL *easy, CURLINFO info, void **out);

CURLMcode recker_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

/* CURLMsg.data is a union. */
CURLcode recker_msg_result(const CURLMsg *msg);

/* Creates a close-on-exec socket for libcurl's open-socket callback; -1 on failure. */
curl_socket_t recker_open_socket(const struct curl_sockaddr *address);

#endif
