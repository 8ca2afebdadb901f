import QuorumControl
import QuorumControlServer
import Synchronization

/// The watchers of `quorumctl watch`: each gets every event as one JSON line, after the
/// snapshot it began with.
///
/// Bounded on every side: at most ``maximumWatchers`` at once (one more is refused), and at
/// most ``maximumQueued`` lines waiting for one watcher; a watcher that falls that far behind
/// gets one `overflow` line and its watch ends (`quorumctl watch --reconnect` starts again
/// with a fresh snapshot). Publishing never waits for a reader, so a slow reader cannot slow
/// the node.
///
/// Publish from the node's event loop; watchers consume on the control server's tasks.
public final class WatchHub: Sendable {
    public static let maximumWatchers = 16
    public static let maximumQueued = 1024

    private struct Watcher {
        var continuation: AsyncStream<[UInt8]>.Continuation
        var queued = 0
    }

    private struct State {
        var watchers: [Int: Watcher] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var count: Int { state.withLock { $0.watchers.count } }

    /// Whether anyone watches (events are built only then).
    var isWatched: Bool { count > 0 }

    /// A new watcher whose first line is `snapshot` (taken on the node's loop at the same
    /// moment, so no event falls between the two).
    func subscribe(snapshot: WatchEvent) -> Result<LineFeed, ControlServer.WatchRefusal> {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .unbounded)
        let id: Int? = state.withLock { s in
            guard s.watchers.count < Self.maximumWatchers else { return nil }
            s.nextID += 1
            var watcher = Watcher(continuation: continuation)
            watcher.continuation.yield(snapshot.encodedLine())
            watcher.queued = 1
            s.watchers[s.nextID] = watcher
            return s.nextID
        }
        guard let id else {
            continuation.finish()
            return .failure(.init("too many watchers (at most \(Self.maximumWatchers) at once)"))
        }
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return .success(LineFeed(
            lines: stream,
            consumed: { [weak self] in self?.consumed(id) },
            cancel: { continuation.finish() }))
    }

    /// Hands `event` to every watcher; one that has too much waiting gets an overflow line
    /// and is ended instead.
    func publish(_ event: WatchEvent) {
        let line = event.encodedLine()
        var overflow = WatchEvent(type: .overflow, node: event.node, instance: event.instance, epoch: event.epoch, millisecondsSinceEpoch: 0)
        overflow.time = event.time
        overflow.dropped = 1
        let overflowLine = overflow.encodedLine()
        // Ended outside the lock: finishing a stream calls its termination handler.
        let ended: [AsyncStream<[UInt8]>.Continuation] = state.withLock { s in
            var ended: [AsyncStream<[UInt8]>.Continuation] = []
            for (id, watcher) in s.watchers {
                if watcher.queued >= Self.maximumQueued - 1 {
                    watcher.continuation.yield(overflowLine)
                    ended.append(watcher.continuation)
                    s.watchers[id] = nil
                } else {
                    watcher.continuation.yield(line)
                    s.watchers[id]?.queued += 1
                }
            }
            return ended
        }
        for continuation in ended { continuation.finish() }
    }

    /// Ends every watch (the node is gone).
    func finishAll() {
        let all = state.withLock { s in
            defer { s.watchers = [:] }
            return Array(s.watchers.values)
        }
        for watcher in all { watcher.continuation.finish() }
    }

    private func consumed(_ id: Int) {
        state.withLock { s in
            if let queued = s.watchers[id]?.queued, queued > 0 { s.watchers[id]?.queued = queued - 1 }
        }
    }

    private func remove(_ id: Int) {
        state.withLock { s in s.watchers[id] = nil }
    }
}
