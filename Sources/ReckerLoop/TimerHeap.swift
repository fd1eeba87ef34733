/// A binary min-heap of (deadline, id): the loop's timers, earliest first. Cancelling is
/// the loop's business (it forgets the id); the heap only orders.
struct TimerHeap {
    private var items: [(deadline: UInt64, id: UInt64)] = []

    var count: Int { items.count }

    func peek() -> (deadline: UInt64, id: UInt64)? { items.first }

    mutating func push(deadline: UInt64, id: UInt64) {
        items.append((deadline, id))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard before(i, parent) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        siftDown(0)
    }

    /// Drops every entry whose id `shouldRemove` names, then restores the order.
    mutating func removeAll(where shouldRemove: (UInt64) -> Bool) {
        items.removeAll { shouldRemove($0.id) }
        var i = items.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    private func before(_ a: Int, _ b: Int) -> Bool {
        items[a].deadline < items[b].deadline || (items[a].deadline == items[b].deadline && items[a].id < items[b].id)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && before(l, m) { m = l }
            if r < items.count && before(r, m) { m = r }
            if m == i { return }
            items.swapAt(i, m)
            i = m
        }
    }
}
