import QuorumCore

/// A binary heap of actions ordered by (global time, insertion order): equal times keep
/// the order in which they were scheduled, so a seed replays exactly.
struct EventQueue<Element> {
    private var heap: [(time: Instant, seq: UInt64, element: Element)] = []
    private var counter: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var peekTime: Instant? { heap.first?.time }

    mutating func push(at time: Instant, _ element: Element) {
        counter += 1
        heap.append((time, counter, element))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if less(i, parent) { heap.swapAt(i, parent); i = parent } else { break }
        }
    }

    mutating func pop() -> (Instant, Element)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, less(l, m) { m = l }
            if r < heap.count, less(r, m) { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        return (top.time, top.element)
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        heap[a].time < heap[b].time || (heap[a].time == heap[b].time && heap[a].seq < heap[b].seq)
    }
}

extension Instant {
    static func - (a: Instant, d: Duration) -> Instant { Instant(nanoseconds: a.nanoseconds - d.nanosecondsClamped) }
}
