#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A thread of its own for a client's blocking calls (connect and handshake, socket
/// writes), so they never hold a thread of Swift's cooperative pool. Jobs run one at a
/// time in the order they were submitted, so frames never interleave. The thread starts
/// with the first job and ends when its owner is gone and every job submitted has run.
final class IOThread: Sendable {
    private let queue = JobQueue()

    /// Runs `job` on the thread, after every job submitted before it.
    func submit(_ job: @escaping @Sendable () -> Void) { queue.submit(job) }

    deinit { queue.finish() }
}

/// The jobs and the condition the thread sleeps on.
///
/// Thread confinement: every field is read and written only with `mutex` held.
private final class JobQueue: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [@Sendable () -> Void] = []
    private var finished = false
    private var running = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        jobs.append(job)
        let start = !running
        running = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        if start && !DetachedThread.start({ self.run() }) { drain() }
    }

    func finish() {
        pthread_mutex_lock(mutex)
        finished = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// The thread's loop: every job, then sleep until more come or the owner is gone.
    private func run() {
        pthread_mutex_lock(mutex)
        while true {
            while jobs.isEmpty && !finished { pthread_cond_wait(condition, mutex) }
            if jobs.isEmpty { break }
            runJobs()
        }
        running = false
        pthread_mutex_unlock(mutex)
    }

    /// Without a thread (pthread_create failed) the caller runs the jobs itself.
    private func drain() {
        pthread_mutex_lock(mutex)
        while !jobs.isEmpty { runJobs() }
        running = false
        pthread_mutex_unlock(mutex)
    }

    /// Runs the jobs queued now, without the lock; called and returning with it held.
    private func runJobs() {
        let batch = jobs
        jobs.removeAll(keepingCapacity: true)
        pthread_mutex_unlock(mutex)
        for job in batch { job() }
        pthread_mutex_lock(mutex)
    }
}
