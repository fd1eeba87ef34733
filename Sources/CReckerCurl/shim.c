#include "CReckerCurl.h"
#include <sys/socket.h>

CURLcode recker_easy_setopt_long(CURL *easy, CURLoption option, long value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_off(CURL *easy, CURLoption option, curl_off_t value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_string(CURL *easy, CURLoption option, const char *value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_pointer(CURL *easy, CURLoption option, void *value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_data_callback(CURL *easy, CURLoption option, recker_data_callback cb) { return curl_easy_setopt(easy, option, cb); }
CURLcode recker_easy_setopt_opensocket(CURL *easy, recker_opensocket_callback cb) { return curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, cb); }
CURLcode recker_easy_setopt_closesocket(CURL *easy, recker_closesocket_callback cb) { return curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, cb); }

CURLcode recker_easy_setopt_prereq(CURL *easy, curl_prereq_callback cb) { return curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, cb); }

CURLcode recker_easy_getinfo_long(CURL *easy, CURLINFO info, long *out) { return curl_easy_getinfo(easy, info, out); }
CURLcode recker_easy_getinfo_off(CURL *easy, CURLINFO info, curl_off_t *out) { return curl_easy_getinfo(easy, info, out); }
CURLcode recker_easy_getinfo_pointer(CURL *easy, CURLINFO info, void **out) { return curl_easy_getinfo(easy, info, out); }

CURLMcode recker_multi_setopt_long(CURLM *multi, CURLMoption option, long value) { return curl_multi_setopt(multi, option, value); }

CURLcode recker_msg_result(const CURLMsg *msg) { return msg->data.result; }

curl_socket_t recker_open_socket(const struct curl_sockaddr *address) {
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}
