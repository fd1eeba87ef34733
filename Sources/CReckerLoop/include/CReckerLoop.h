#ifndef CRECKERLOOP_H
#define CRECKERLOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* What Glibc's Swift module leaves out (<sys/epoll.h>, <sys/eventfd.h>, accept4, struct
   ucred behind _GNU_SOURCE) and a signal handler that only writes to a pipe. Every call
   returns what the system call returns, with errno untouched. */

#define RECKER_EPOLLIN 0x001
#define RECKER_EPOLLOUT 0x004
#define RECKER_EPOLLERR 0x008
#define RECKER_EPOLLHUP 0x010
#define RECKER_EPOLLRDHUP 0x2000

/* One ready descriptor, flattened from struct epoll_event (packed on x86-64). */
struct recker_event {
    uint32_t events;
    int32_t fd;
};

int recker_epoll_create(void);
/* op: 1 add, 2 delete, 3 modify (EPOLL_CTL_*); the event's data is the descriptor. */
int recker_epoll_ctl(int epfd, int op, int fd, uint32_t events);
/* Waits up to timeout_ms (-1: forever); fills `out` with up to `max` events. */
int recker_epoll_wait(int epfd, struct recker_event *out, int max, int timeout_ms);

/* A non-blocking, close-on-exec eventfd. */
int recker_eventfd(void);

/* accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC. */
int recker_accept(int fd);

/* SO_PEERCRED of a connected Unix socket. */
int recker_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid);

/* Bytes of the heap in use now: glibc's mallinfo2, arena (uordblks) plus mmapped (hblkhd). */
size_t recker_heap_in_use(void);

/* SO_PEERGROUPS: up to `max` supplementary groups; returns their number, or -1. */
int recker_peer_groups(int fd, uint32_t *groups, int max);

/* Makes `sig` write its number (one byte) to `fd` (non-blocking) from a handler that does
   nothing else, so a loop can take signals as readable bytes. SA_RESTART is set, and the
   signal is unblocked in the calling thread (a blocked mask is inherited from the parent). */
int recker_signal_to_fd(int sig, int fd);

/* Names the calling thread (up to 15 bytes show). */
void recker_set_thread_name(const char *name);

#endif
