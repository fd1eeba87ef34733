import CReckerLoop

/// The process's own memory, as the allocator counts it.
package enum ProcessMemory {
    /// Bytes the heap has handed out and not taken back (glibc's `mallinfo2`): unlike RSS,
    /// it does not include pages the allocator keeps after they were freed, so a leak shows
    /// in it and a peak long gone does not.
    package static var heapInUse: Int { Int(recker_heap_in_use()) }
}
