#define _GNU_SOURCE
#include "CReckerLoop.h"
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <pthread.h>
#include <unistd.h>

int recker_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int recker_epoll_ctl(int epfd, int op, int fd, uint32_t events) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.fd = fd;
    return epoll_ctl(epfd, op, fd, &ev);
}

int recker_epoll_wait(int epfd, struct recker_event *out, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i].events = evs[i].events;
        out[i].fd = evs[i].data.fd;
    }
    return n;
}

int recker_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int recker_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int recker_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred c;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return -1;
    *pid = c.pid;
    *uid = c.uid;
    *gid = c.gid;
    return 0;
}

int recker_peer_groups(int fd, uint32_t *groups, int max) {
    socklen_t len = (socklen_t)(max * sizeof(uint32_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) return -1;
    return (int)(len / sizeof(uint32_t));
}

static int signal_fds[65];

static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (sig > 0 && sig < 65 && signal_fds[sig] > 0) (void)!write(signal_fds[sig], &b, 1);
    errno = saved;
}

int recker_signal_to_fd(int sig, int fd) {
    if (sig <= 0 || sig >= 65) { errno = EINVAL; return -1; }
    signal_fds[sig] = fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) return -1;
    /* A parent may have started us with the signal blocked (the mask is inherited). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -1;
}

void recker_set_thread_name(const char *name) { (void)pthread_setname_np(pthread_self(), name); }

size_t recker_heap_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}
