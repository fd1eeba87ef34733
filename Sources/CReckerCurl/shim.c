#define _GNU_SOURCE
#include "CReckerCurl.h"
#include <sys/socket.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <malloc.h>

CURLcode recker_easy_setopt_long(CURL *easy, CURLoption option, long value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_off(CURL *easy, CURLoption option, curl_off_t value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_string(CURL *easy, CURLoption option, const char *value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_pointer(CURL *easy, CURLoption option, void *value) { return curl_easy_setopt(easy, option, value); }
CURLSHcode recker_share_dns(CURLSH *share) { return curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS); }
CURLcode recker_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value) { return curl_easy_setopt(easy, option, value); }
CURLcode recker_easy_setopt_data_callback(CURL *easy, CURLoption option, recker_data_callback cb) { return curl_easy_setopt(easy, option, cb); }
CURLcode recker_easy_setopt_opensocket(CURL *easy, recker_opensocket_callback cb) { return curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, cb); }
CURLcode recker_easy_setopt_closesocket(CURL *easy, recker_closesocket_callback cb) { return curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, cb); }

CURLcode recker_easy_setopt_prereq(CURL *easy, curl_prereq_callback cb) { return curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, cb); }
CURLcode recker_easy_setopt_seek(CURL *easy, curl_seek_callback cb) { return curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, cb); }

CURLcode recker_easy_getinfo_long(CURL *easy, CURLINFO info, long *out) { return curl_easy_getinfo(easy, info, out); }
CURLcode recker_easy_getinfo_off(CURL *easy, CURLINFO info, curl_off_t *out) { return curl_easy_getinfo(easy, info, out); }
CURLcode recker_easy_getinfo_pointer(CURL *easy, CURLINFO info, void **out) { return curl_easy_getinfo(easy, info, out); }
CURLcode recker_easy_getinfo_string(CURL *easy, CURLINFO info, const char **out) { return curl_easy_getinfo(easy, info, out); }

CURLMcode recker_multi_setopt_long(CURLM *multi, CURLMoption option, long value) { return curl_multi_setopt(multi, option, value); }
CURLMcode recker_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value) { return curl_multi_setopt(multi, option, value); }
CURLMcode recker_multi_setopt_socket(CURLM *multi, curl_socket_callback cb) { return curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, cb); }
CURLMcode recker_multi_setopt_timer(CURLM *multi, curl_multi_timer_callback cb) { return curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, cb); }

CURLcode recker_msg_result(const CURLMsg *msg) { return msg->data.result; }

curl_socket_t recker_open_socket(const struct curl_sockaddr *address) {
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

int recker_open_tmpfile(const char *directory) {
    return open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

static int ipv4_class(uint32_t a) {
    if ((a >> 16) == 0xA9FE) return RECKER_DEST_LINK_LOCAL;                 /* 169.254/16 */
    if ((a >> 24) == 10 || (a >> 20) == 0xAC1 || (a >> 16) == 0xC0A8       /* 10/8 172.16/12 192.168/16 */
        || (a >> 22) == (100u << 2 | 1)) return RECKER_DEST_PRIVATE;        /* 100.64/10 */
    if ((a >> 24) == 127 || (a >> 24) == 0) return RECKER_DEST_LOOPBACK;     /* 127/8; 0/8 reaches this host */
    return 0;
}

int recker_destination_class(const struct curl_sockaddr *address, char *text, size_t textlen) {
    if (textlen) text[0] = 0;
    if (address->family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&address->addr;
        inet_ntop(AF_INET, &in->sin_addr, text, textlen);
        return ipv4_class(ntohl(in->sin_addr.s_addr));
    }
    if (address->family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&address->addr;
        const unsigned char *b = in6->sin6_addr.s6_addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, textlen);
        /* IPv4 inside IPv6: mapped (::ffff:a.b.c.d), SIIT (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d). */
        static const unsigned char mapped[12] = {0,0,0,0,0,0,0,0,0,0,0xff,0xff};
        static const unsigned char siit[12] = {0,0,0,0,0,0,0,0,0xff,0xff,0,0};
        static const unsigned char nat64[12] = {0,0x64,0xff,0x9b,0,0,0,0,0,0,0,0};
        if (memcmp(b, mapped, 12) == 0 || memcmp(b, siit, 12) == 0 || memcmp(b, nat64, 12) == 0)
            return ipv4_class((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return RECKER_DEST_LINK_LOCAL;   /* fe80::/10 */
        static const unsigned char ec2[16] = {0xfd,0,0x0e,0xc2,0,0,0,0,0,0,0,0,0,0,0x02,0x54};
        if (memcmp(b, ec2, 16) == 0) return RECKER_DEST_LINK_LOCAL;                 /* a cloud metadata service */
        if ((b[0] & 0xfe) == 0xfc) return RECKER_DEST_PRIVATE;                      /* fc00::/7 (fd00:ec2::254 too) */
        static const unsigned char loop[16] = {0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1};
        static const unsigned char any[16] = {0};
        if (memcmp(b, loop, 16) == 0 || memcmp(b, any, 16) == 0) return RECKER_DEST_LOOPBACK;  /* ::1, and :: reaches this host */
    }
    return 0;
}

void recker_trim_heap(void) { malloc_trim(0); }
