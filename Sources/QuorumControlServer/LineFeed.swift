/// What the server streams to a client that asked for `watch`: lines (each ending with its
/// newline) until the feed ends, or a refusal.
public struct LineFeed: Sendable {
    public var lines: AsyncStream<[UInt8]>
    /// Called after each line has been handed to the socket (the feed's producer bounds what
    /// it queues for a reader that lags).
    public var consumed: @Sendable () -> Void
    /// Ends the feed: the client went away, or the server is shutting down.
    public var cancel: @Sendable () -> Void

    public init(lines: AsyncStream<[UInt8]>, consumed: @escaping @Sendable () -> Void, cancel: @escaping @Sendable () -> Void) {
        self.lines = lines
        self.consumed = consumed
        self.cancel = cancel
    }
}
